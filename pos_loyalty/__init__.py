"""pos-loyalty: a loyalty terminal for point-of-sale tills.

A member taps an NFC card, the terminal identifies them from its local store, quotes
discounts and points with the rules engine and tells the till over a framed serial link.
"""

__version__ = "0.1.0"
