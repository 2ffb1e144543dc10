"""Simulated RF: tags emulated over nfcpy's ``udp`` driver, for tests, the demo and integrators."""
