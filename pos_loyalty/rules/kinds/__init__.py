"""The rule kinds, one module each, registered by their TOML ``kind`` name.

Adding a kind is a module here with a frozen ``Rule`` subclass (its ``KIND``, ``KEYS``,
``parse`` and the stage hooks it needs) and a test file: every module of this package is
imported below and every ``Rule`` subclass with a ``KIND`` is registered.
"""

import importlib
import pkgutil

from pos_loyalty.rules.kinds.base import WEEKDAYS, Applied, Conditions, Rule, Sale
from pos_loyalty.rules.kinds.bonus import Bonus
from pos_loyalty.rules.kinds.coupon import Coupon
from pos_loyalty.rules.kinds.credit import CreditRule
from pos_loyalty.rules.kinds.discount import Discount
from pos_loyalty.rules.kinds.earn import Earn
from pos_loyalty.rules.kinds.instant_win import InstantWin, Prize
from pos_loyalty.rules.kinds.membership import Membership
from pos_loyalty.rules.kinds.multiplier import Multiplier
from pos_loyalty.rules.kinds.perk import PerkRule
from pos_loyalty.rules.kinds.progressive import Progressive
from pos_loyalty.rules.kinds.referral import Referral
from pos_loyalty.rules.kinds.stamps import Stamps
from pos_loyalty.rules.kinds.threshold import Threshold
from pos_loyalty.rules.kinds.tiers import Level, Tiers

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def _kinds(cls: type[Rule]) -> list[type[Rule]]:
    out = [cls] if cls.KIND else []
    for sub in cls.__subclasses__():
        out.extend(_kinds(sub))
    return out


KINDS: dict[str, type[Rule]] = {k.KIND: k for k in sorted(_kinds(Rule), key=lambda k: k.KIND)}
"""Kind name -> class."""

__all__ = [
    "KINDS", "WEEKDAYS", "Applied", "Bonus", "Conditions", "Coupon", "CreditRule", "Discount",
    "Earn", "InstantWin", "Level", "Membership", "Multiplier", "PerkRule", "Prize",
    "Progressive", "Referral", "Rule", "Sale", "Stamps", "Threshold", "Tiers",
]
