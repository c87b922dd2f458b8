"""The household ledger: importing bank exports and summing them up."""
