"""T.38: UDPTL, IFP, and the gateway between audio fax and T.38."""
