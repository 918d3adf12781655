"""Funding providers: banks and card processors behind one small interface, and a simulator."""
