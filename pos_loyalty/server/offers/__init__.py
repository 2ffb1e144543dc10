"""Personal offers at central: issued member-bound coupons, their uses, the cashier's line."""
