"""How to talk to a flow, shared by api/, workers/ and ops/ (which never import each other for it): the
terms a flow starts with, built from settings, and the stuck-flow query."""
