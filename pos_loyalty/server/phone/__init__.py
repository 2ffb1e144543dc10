"""The customer's phone: the page a product tag opens, its forms, and what the brand learns."""
