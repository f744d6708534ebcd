"""The APIs agents use, through `ax serve` over `ax sim serve` with the official SDKs."""
