"""Several ``sautikit serve`` processes on one database: node leases, recovery of a dead
node's calls, and the figures every node reads from the shared tables."""
