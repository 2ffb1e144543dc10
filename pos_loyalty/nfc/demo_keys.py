"""The demo issuer key: FOR SIMULATION ONLY.

This private key is published in the source tree, so anyone can mint cards it signs. It exists
so that ``pos-loyalty demo``, ``pos-loyalty sim tag`` and the tests have cards that verify out
of the box, and the daemon trusts it only when it runs with no configuration at all. A real
deployment generates its own key (``pos-loyalty card issue --key FILE``) and configures the
terminal with the matching public key; the demo key must never be trusted in a shop.
"""

from __future__ import annotations

from pos_loyalty.nfc.cardformat import CardTrust, Issuer

DEMO_ISSUER_PRIVATE_KEY_HEX = "f90518e1a248b30f0698f100383f5f53eff795691c6fc3e08740de851975575b"

DEMO_ISSUER = Issuer(bytes.fromhex(DEMO_ISSUER_PRIVATE_KEY_HEX))
DEMO_PUBLIC_KEY: bytes = DEMO_ISSUER.public_key
DEMO_PUBLIC_KEY_HEX: str = DEMO_PUBLIC_KEY.hex()


def demo_trust(*, revoked: frozenset[str] = frozenset(),
               accept_legacy_uid: bool = False) -> CardTrust:
    """A CardTrust that trusts only the demo issuer (simulation and tests)."""
    return CardTrust((DEMO_PUBLIC_KEY,), revoked, accept_legacy_uid)
