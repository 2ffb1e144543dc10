"""NFC: the reader adapter over nfcpy, member card and product tag formats, simulated tags.

``events.TapEvent`` is what the rest of the terminal sees of a tap; ``reader.Reader`` produces
them from a real or simulated reader; ``cardformat`` is the pure core that decides what a tag is.
"""
