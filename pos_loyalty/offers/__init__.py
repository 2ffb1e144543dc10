"""Personal offers: who gets which member-bound coupon (pure targets, the offers file)."""
