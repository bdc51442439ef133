"""The CX metric core: tallies and scores, windows, customer state, value bands, quadrants.

Plain functions and small immutable objects, with no Faust import: agents only wire them
to streams and tables.
"""
