"""PyTorch side of the project: hyper layers, encoders/decoders, losses (trainer and edge only)."""
