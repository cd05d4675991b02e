"""Trading: rules that turn predictions into orders, and the brokers that place them."""
