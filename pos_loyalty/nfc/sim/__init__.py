"""Simulated NFC hardware: emulated tags driven over nfcpy's udp driver."""
