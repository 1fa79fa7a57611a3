"""Science actors of the tests: each module holds one ``ACTOR`` the tests enable by path."""
