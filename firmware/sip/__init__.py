"""SIP stack: message parsing, transactions, dialogs, digest auth, registrar, B2BUA."""
