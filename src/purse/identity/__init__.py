"""Identity: users, passwords, one-time codes, login throttling, and the audit of it all."""
