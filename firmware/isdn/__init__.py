"""Q.921 (LAPD) and Q.931 call control, TE and NT side, BRI and PRI."""
