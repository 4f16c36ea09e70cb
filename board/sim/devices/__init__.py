"""Virtual devices that plug into the sim's analog lines: an analog phone and a PSTN line.

They touch only the line side (``board.sim.analog_line``), never registers, and run on
the line's clock: each PCM tick the chip model delivers a frame to the device, which
answers with the frame it sends next. So the same device works on a fake clock in unit
tests and on the running sim board.
"""

from board.sim.devices.analog_phone import AnalogPhone
from board.sim.devices.pstn_line import PstnLine

__all__ = ["AnalogPhone", "PstnLine"]
