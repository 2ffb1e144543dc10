"""NFC: reader adapters, card and tag formats, emulated tags."""
