"""Notifications: a transactional outbox, relayed to channels after commit."""
