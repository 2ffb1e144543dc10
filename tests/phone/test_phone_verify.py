"""The product URL check, a pure core fed by whatever a phone sends: never raises."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.config import SunKeys
from pos_loyalty.nfc.producturl import TagKeys, parse_product_url, prove
from pos_loyalty.server.phone import queries
from tests.phone.conftest import (
    ISSUER,
    MASTER,
    META,
    SKU,
    SYSTEM_ID,
    TAG_BASE,
    PhoneLive,
    product_tag,
)

KEYS = TagKeys.build(SunKeys(META, MASTER, SYSTEM_ID, product_url=TAG_BASE),
                     (ISSUER.public_key.hex(),))
QUERY_PARTS = st.sampled_from(["picc_data=", "enc=", "cmac=", "u=", "k=", "s=", "&", "=",
                               "%", "0", "F", "A" * 32, "\u05d0", "\x00"])


class TestFuzz:
    @settings(max_examples=400, deadline=None)
    @given(st.text(max_size=300))
    def test_any_query_gives_a_proof(self, query: str) -> None:
        """Arbitrary text as the query: a proof, never an exception, never 'sun'/'signed'."""
        proof = prove(SKU, query, KEYS)
        assert proof.proof in ("forged", "unverified")

    @settings(max_examples=400, deadline=None)
    @given(st.lists(QUERY_PARTS, max_size=40).map("".join))
    def test_query_shaped_garbage(self, query: str) -> None:
        """Text made of the parameters' own pieces does not verify either."""
        assert prove(SKU, query, KEYS).proof in ("forged", "unverified")

    @given(st.text(max_size=200))
    def test_parse_product_url_never_raises(self, url: str) -> None:
        parsed = parse_product_url(url)
        assert parsed is None or url.startswith("https://")

    def test_a_changed_byte_anywhere_fails(self) -> None:
        """Every single-character change of a genuine SUN query is refused."""
        tag = product_tag(bytes.fromhex("04A1B2C3D4E580"))
        tag.activated()
        tag.file_read(b"\xe1\x04")
        assert tag.last_url is not None
        query = tag.last_url.split("?", 1)[1]
        assert prove(SKU, query, KEYS).proof == "sun"
        for i, c in enumerate(query):
            if c in "0123456789ABCDEF":
                changed = query[:i] + ("1" if c != "1" else "2") + query[i + 1:]
                assert prove(SKU, changed, KEYS).proof != "sun", i


class TestRace:
    def test_one_url_two_phones_one_genuine(self, phone: PhoneLive) -> None:
        """Eight threads record the same fresh SUN tap at once: exactly one is genuine,
        one coupon exists (SQLite and PostgreSQL)."""
        tag = product_tag(bytes.fromhex("04A1B2C3D4E590"))
        tag.activated()
        tag.file_read(b"\xe1\x04")
        assert tag.last_url is not None
        proof = prove(SKU, tag.last_url.split("?", 1)[1], KEYS)
        results: list[str] = []
        start = threading.Barrier(8)

        def one(i: int) -> None:
            start.wait()
            v = queries.record_tap(phone.store, SKU, proof, f"t{i}", coupon_percent=10,
                                   coupon_days=30)
            results.append(v.result)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["genuine"] + ["replayed"] * 7
        assert queries.product_figures(phone.store)[0].coupons_issued == 1
