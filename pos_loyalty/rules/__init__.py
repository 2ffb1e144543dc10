"""The loyalty rules engine: pure functions from (member, basket, now, program) to a Quote.

Nothing in this package does I/O, reads the clock or draws random numbers: time, seeds and
member state are arguments, results are values the daemon persists.
"""

from pos_loyalty.rules.engine import check_member, quote
from pos_loyalty.rules.expiry import expire_points, expiry_status, lot_expires
from pos_loyalty.rules.files import load_program
from pos_loyalty.rules.game import DrawResult, draw, seed_commitment, verify_draw
from pos_loyalty.rules.model import (
    Basket,
    BasketLine,
    ConfirmedCoupon,
    Credit,
    LedgerEntry,
    LineEffect,
    MemberView,
    Perk,
    PointsLot,
    Quote,
    QuoteLine,
)
from pos_loyalty.rules.parse import parse_program
from pos_loyalty.rules.program import (
    DEFAULT_PROGRAM,
    Program,
    combine_programs,
    in_timezone,
)
from pos_loyalty.rules.redeem import (
    RedemptionDecision,
    RedemptionOffer,
    catalog_offer,
    decide_redemption,
    redeem_catalog,
    redemption_offer,
)
from pos_loyalty.rules.refund import RefundResult, ReturnLine, refund
from pos_loyalty.rules.replay import (
    Difference,
    PastSale,
    ReplayReport,
    RuleTotals,
    compare,
    parse_sales,
    replay,
)
from pos_loyalty.rules.settlement import PartnerActivity, PartnerTotals, activity_of, settle
from pos_loyalty.rules.tiers import TierReview, review_tier

__all__ = [
    "DEFAULT_PROGRAM",
    "Basket",
    "BasketLine",
    "ConfirmedCoupon",
    "Credit",
    "Difference",
    "DrawResult",
    "LedgerEntry",
    "LineEffect",
    "MemberView",
    "PartnerActivity",
    "PartnerTotals",
    "PastSale",
    "Perk",
    "PointsLot",
    "Program",
    "Quote",
    "QuoteLine",
    "RedemptionDecision",
    "RedemptionOffer",
    "RefundResult",
    "ReplayReport",
    "ReturnLine",
    "RuleTotals",
    "TierReview",
    "activity_of",
    "catalog_offer",
    "check_member",
    "combine_programs",
    "compare",
    "decide_redemption",
    "draw",
    "expire_points",
    "expiry_status",
    "in_timezone",
    "load_program",
    "lot_expires",
    "parse_program",
    "parse_sales",
    "quote",
    "redeem_catalog",
    "redemption_offer",
    "refund",
    "replay",
    "review_tier",
    "seed_commitment",
    "settle",
    "verify_draw",
]
