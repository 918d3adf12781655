"""The money record every domain shares: operations, their kinds, accounts and limits."""
