"""Lifecycle notifications: AWS's message shapes (``messages``) and their webhook delivery
(``delivery``)."""
