"""Sales at central: what terminals push about their baskets, and what reports read."""
