
/* ---- chimevoice addition (appended by scripts/build-pjsua2) ----
 * Per-stream RFC 4733 event duration. pjmedia 2.12 fixes it at stream creation
 * (PJMEDIA_DTMF_DURATION); SendDigits needs ToneDurationInMilliseconds per
 * action. The duration is in RTP timestamp units and the event's duration field
 * is 16 bits, so it is capped at 65535 units (8.19 s at 8 kHz). */
PJ_DEF(pj_status_t) pjmedia_stream_set_dtmf_duration_msec(pjmedia_stream *stream,
                                                          unsigned msec)
{
    pj_uint64_t units;
    unsigned pkt_ms;

    PJ_ASSERT_RETURN(stream, PJ_EINVAL);
    pkt_ms = stream->codec_param.info.frm_ptime * stream->codec_param.setting.frm_per_pkt;
    if (pkt_ms == 0)
        return PJ_EINVALIDOP;
    units = (pj_uint64_t)msec * stream->rtp_tx_ts_len_per_pkt / pkt_ms;
    if (units > 65535)
        units = 65535;
    if (units < stream->rtp_tx_ts_len_per_pkt)
        units = stream->rtp_tx_ts_len_per_pkt;
    pj_mutex_lock(stream->jb_mutex);
    stream->dtmf_duration = (unsigned)units;
    pj_mutex_unlock(stream->jb_mutex);
    return PJ_SUCCESS;
}
