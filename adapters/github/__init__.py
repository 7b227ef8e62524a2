"""The GitHub adapter: client, token chain, shared rate budget, queries and provider."""
