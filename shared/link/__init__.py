"""Digital links of the channel: ``ideal`` (capacity air-time, no errors) and
``ldpc-qam`` (5G LDPC + QAM over AWGN, simulated with Sionna). ``analog`` is the default."""
