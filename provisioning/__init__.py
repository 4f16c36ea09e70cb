"""Phone provisioning: TFTP, HTTP(S), vendor templates, DHCP option 66, SIP PnP, zeroconf."""
