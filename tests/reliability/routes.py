"""The app's route table, flattened: every (method, path) a request can reach."""

from purse.routing import route_table

__all__ = ["route_table"]
