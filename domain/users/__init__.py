"""Users, their credentials and access tokens."""
