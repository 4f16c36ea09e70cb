"""SBC policies toward trunks: TLS/SRTP policy, denylist, flood guard, header rules."""
