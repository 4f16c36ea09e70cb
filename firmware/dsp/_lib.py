"""The cffi ABI-mode declarations of libspandsp 0.0.6 and libspeexdsp, loaded lazily.

Private to the package: no cffi object leaves ``firmware.dsp``. The declarations are written
from the libraries' public API as Debian ships it (spandsp 0.0.6, whose ``dtmf_tx_init``
takes no callback and whose ``dtmf_rx_parms`` takes whole dB; speexdsp 1.2); every state is opaque and
allocated by its ``*_init(NULL, ...)`` so no struct layout is assumed.
"""

from __future__ import annotations

import threading
from typing import Any

import cffi

from firmware.dsp.errors import DspError

SPANDSP_SONAME = "libspandsp.so.2"
SPEEXDSP_SONAME = "libspeexdsp.so.1"

ffi = cffi.FFI()

ffi.cdef(
    """
    /* digits and tone reports (dtmf.h, super_tone_rx.h, async.h) */
    typedef void (*digits_rx_callback_t)(void *user_data, const char *digits, int len);
    typedef void (*tone_report_func_t)(void *user_data, int code, int level, int delay);
    typedef void (*tone_segment_func_t)(void *data, int f1, int f2, int duration);
    typedef void (*put_msg_func_t)(void *user_data, const uint8_t *msg, int len);

    typedef struct dtmf_tx_state_s dtmf_tx_state_t;
    typedef struct dtmf_rx_state_s dtmf_rx_state_t;
    dtmf_tx_state_t *dtmf_tx_init(dtmf_tx_state_t *s);
    int dtmf_tx_free(dtmf_tx_state_t *s);
    int dtmf_tx(dtmf_tx_state_t *s, int16_t amp[], int max_samples);
    int dtmf_tx_put(dtmf_tx_state_t *s, const char *digits, int len);
    void dtmf_tx_set_level(dtmf_tx_state_t *s, int level, int twist);
    void dtmf_tx_set_timing(dtmf_tx_state_t *s, int on_time, int off_time);

    dtmf_rx_state_t *dtmf_rx_init(dtmf_rx_state_t *s, digits_rx_callback_t callback,
                                  void *user_data);
    int dtmf_rx_free(dtmf_rx_state_t *s);
    void dtmf_rx_set_realtime_callback(dtmf_rx_state_t *s, tone_report_func_t callback,
                                       void *user_data);
    void dtmf_rx_parms(dtmf_rx_state_t *s, int filter_dialtone, int twist, int reverse_twist,
                       int threshold);
    int dtmf_rx(dtmf_rx_state_t *s, const int16_t amp[], int samples);
    int dtmf_rx_status(dtmf_rx_state_t *s);

    /* tone_generate.h */
    typedef struct tone_gen_descriptor_s tone_gen_descriptor_t;
    typedef struct tone_gen_state_s tone_gen_state_t;
    tone_gen_descriptor_t *tone_gen_descriptor_init(tone_gen_descriptor_t *s, int f1, int l1,
                                                    int f2, int l2, int d1, int d2, int d3,
                                                    int d4, int repeat);
    void tone_gen_descriptor_free(tone_gen_descriptor_t *s);
    tone_gen_state_t *tone_gen_init(tone_gen_state_t *s, tone_gen_descriptor_t *t);
    int tone_gen(tone_gen_state_t *s, int16_t amp[], int max_samples);
    int tone_gen_free(tone_gen_state_t *s);

    /* super_tone_rx.h */
    typedef struct super_tone_rx_descriptor_s super_tone_rx_descriptor_t;
    typedef struct super_tone_rx_state_s super_tone_rx_state_t;
    super_tone_rx_descriptor_t *super_tone_rx_make_descriptor(super_tone_rx_descriptor_t *d);
    int super_tone_rx_free_descriptor(super_tone_rx_descriptor_t *desc);
    int super_tone_rx_add_tone(super_tone_rx_descriptor_t *desc);
    int super_tone_rx_add_element(super_tone_rx_descriptor_t *desc, int tone, int f1, int f2,
                                  int min, int max);
    super_tone_rx_state_t *super_tone_rx_init(super_tone_rx_state_t *s,
                                              super_tone_rx_descriptor_t *desc,
                                              tone_report_func_t callback, void *user_data);
    int super_tone_rx_free(super_tone_rx_state_t *s);
    int super_tone_rx(super_tone_rx_state_t *s, const int16_t amp[], int samples);

    /* adsi.h */
    typedef struct adsi_tx_state_s adsi_tx_state_t;
    typedef struct adsi_rx_state_s adsi_rx_state_t;
    adsi_rx_state_t *adsi_rx_init(adsi_rx_state_t *s, int standard, put_msg_func_t put_msg,
                                  void *user_data);
    int adsi_rx_free(adsi_rx_state_t *s);
    int adsi_rx(adsi_rx_state_t *s, const int16_t amp[], int len);
    adsi_tx_state_t *adsi_tx_init(adsi_tx_state_t *s, int standard);
    int adsi_tx_free(adsi_tx_state_t *s);
    void adsi_tx_set_preamble(adsi_tx_state_t *s, int preamble_len, int preamble_ones_len,
                              int postamble_ones_len, int stop_bits);
    int adsi_tx(adsi_tx_state_t *s, int16_t amp[], int max_len);
    void adsi_tx_send_alert_tone(adsi_tx_state_t *s);
    int adsi_tx_put_message(adsi_tx_state_t *s, const uint8_t *msg, int len);
    int adsi_next_field(adsi_rx_state_t *s, const uint8_t *msg, int msg_len, int pos,
                        uint8_t *field_type, uint8_t const **field_body, int *field_len);
    int adsi_add_field(adsi_tx_state_t *s, uint8_t *msg, int len, uint8_t field_type,
                       uint8_t const *field_body, int field_len);

    /* plc.h */
    typedef struct plc_state_s plc_state_t;
    plc_state_t *plc_init(plc_state_t *s);
    int plc_free(plc_state_t *s);
    int plc_rx(plc_state_t *s, int16_t amp[], int len);
    int plc_fillin(plc_state_t *s, int16_t amp[], int len);

    /* g722.h */
    typedef struct g722_encode_state_s g722_encode_state_t;
    typedef struct g722_decode_state_s g722_decode_state_t;
    g722_encode_state_t *g722_encode_init(g722_encode_state_t *s, int rate, int options);
    int g722_encode_free(g722_encode_state_t *s);
    int g722_encode(g722_encode_state_t *s, uint8_t g722_data[], const int16_t amp[], int len);
    g722_decode_state_t *g722_decode_init(g722_decode_state_t *s, int rate, int options);
    int g722_decode_free(g722_decode_state_t *s);
    int g722_decode(g722_decode_state_t *s, int16_t amp[], const uint8_t g722_data[], int len);

    /* speexdsp: speex_echo.h */
    typedef struct SpeexEchoState_ SpeexEchoState;
    SpeexEchoState *speex_echo_state_init(int frame_size, int filter_length);
    void speex_echo_state_destroy(SpeexEchoState *st);
    void speex_echo_cancellation(SpeexEchoState *st, const int16_t *rec, const int16_t *play,
                                 int16_t *out);
    void speex_echo_state_reset(SpeexEchoState *st);
    int speex_echo_ctl(SpeexEchoState *st, int request, void *ptr);
    """
)

# spandsp 0.0.6 adsi.h: the caller-ID standards.
ADSI_STANDARD_CLASS = 1
ADSI_STANDARD_CLIP = 2
ADSI_STANDARD_CLIP_DTMF = 5
# speex_echo.h
SPEEX_ECHO_GET_FRAME_SIZE = 3
SPEEX_ECHO_SET_SAMPLING_RATE = 24

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def _open(soname: str) -> Any:
    with _lock:
        lib = _loaded.get(soname)
        if lib is None:
            try:
                lib = ffi.dlopen(soname)
            except OSError as exc:
                raise DspError(f"cannot load {soname}: {exc}") from exc
            _loaded[soname] = lib
        return lib


def spandsp() -> Any:
    """The loaded libspandsp (Debian ``libspandsp2``); DspError when it is not installed."""
    return _open(SPANDSP_SONAME)


def speexdsp() -> Any:
    """The loaded libspeexdsp (Debian ``libspeexdsp1``); DspError when it is not installed."""
    return _open(SPEEXDSP_SONAME)


def check_ptr(ptr: Any, what: str) -> Any:
    """Return ``ptr`` or raise DspError when an allocating call returned NULL."""
    if ptr == ffi.NULL:
        raise DspError(f"{what} failed (returned NULL)")
    return ptr
