/*
 * chimevoice addition to the pjsua2 SWIG module: FrameTap.
 *
 * pjsua2 2.12 has no way to see or make audio frames from Python (AudioMediaPort
 * came later, and it calls back into Python on pjmedia's clock thread, which
 * does not scale). FrameTap is a conference-bridge port that keeps Python off
 * that thread:
 *
 *   - as a sink (something.startTransmit(tap)) every frame the bridge writes to
 *     it is appended to a bounded capture buffer; read() drains that buffer as
 *     bytes (16-bit little-endian mono PCM at the bridge's clock rate);
 *   - as a source (tap.startTransmit(something)) it plays out the PCM queued
 *     with write(), and is silent (contributes nothing) when the queue is empty.
 *
 * The clock thread and the Python side meet only under a std::mutex held for a
 * memcpy. read()/write() keep the GIL (they touch Python objects, briefly).
 */

%{
#include <atomic>
#include <mutex>
#include <string>
#include <cstring>
#include <chrono>
#include <cmath>
#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <pjsua-lib/pjsua_internal.h>
#include <speex/speex_preprocess.h>

/* Appended to pjmedia's stream.c by scripts/build-pjsua2 (stream-dtmf-duration.c). */
extern "C" pj_status_t pjmedia_stream_set_dtmf_duration_msec(pjmedia_stream *stream,
                                                             unsigned msec);

namespace chimevoice {

class FrameTap : public pj::AudioMedia
{
public:
    FrameTap() : pool_(NULL), created_(false), capture_(true), spf_bytes_(320),
                 cap_max_(32000), cap_pos_(0), out_max_(32000), out_pos_(0),
                 dropped_(0), underruns_(0), captured_(0)
    {
        std::memset(&port_, 0, sizeof(port_));
    }

    virtual ~FrameTap()
    {
        if (created_) {
            unregisterMediaPort();
            created_ = false;
        }
        if (pool_) {
            pj_pool_release(pool_);
            pool_ = NULL;
        }
    }

    void createTap(unsigned clock_rate, unsigned samples_per_frame,
                   unsigned capture_ms, unsigned playout_ms) PJSUA2_THROW(pj::Error)
    {
        if (created_)
            throw pj::Error(PJ_EEXISTS, "FrameTap::createTap", "already created", "", 0);
        pool_ = pjsua_pool_create("frametap%p", 512, 512);
        if (!pool_)
            throw pj::Error(PJ_ENOMEM, "FrameTap::createTap", "no memory", "", 0);
        static char name[] = "chimevoice-tap";
        pj_str_t pname = pj_str(name);
        pjmedia_port_info_init(&port_.info, &pname, PJMEDIA_SIGNATURE('C', 'V', 'T', 'P'),
                               clock_rate, 1, 16, samples_per_frame);
        port_.port_data.pdata = this;
        port_.put_frame = &FrameTap::on_put;
        port_.get_frame = &FrameTap::on_get;
        port_.on_destroy = &FrameTap::on_destroy;
        spf_bytes_ = samples_per_frame * 2;
        cap_max_ = (size_t)clock_rate * 2 * capture_ms / 1000;
        out_max_ = (size_t)clock_rate * 2 * playout_ms / 1000;
        registerMediaPort2(&port_, pool_);
        created_ = true;
    }

    /* Captured PCM since the last call, as bytes (b"" when none). */
    PyObject *read()
    {
        std::string out;
        size_t from = 0;
        {
            std::lock_guard<std::mutex> lock(mu_);
            out.swap(cap_);
            from = cap_pos_;
            cap_pos_ = 0;
        }
        return PyBytes_FromStringAndSize(out.data() + from, (Py_ssize_t)(out.size() - from));
    }

    /* Queue PCM to play out; returns the number of bytes accepted (the rest is
       dropped when more than playout_ms would be queued). */
    unsigned write(PyObject *data)
    {
        char *buf = NULL;
        Py_ssize_t len = 0;
        if (PyBytes_AsStringAndSize(data, &buf, &len) != 0) {
            PyErr_Clear();
            return 0;
        }
        std::lock_guard<std::mutex> lock(mu_);
        size_t pending = out_.size() - out_pos_;
        size_t room = pending >= out_max_ ? 0 : out_max_ - pending;
        size_t n = (size_t)len < room ? (size_t)len : room;
        n &= ~(size_t)1;
        if (out_pos_ > 0 && out_pos_ >= out_.size() / 2) {
            out_.erase(0, out_pos_);
            out_pos_ = 0;
        }
        out_.append(buf, n);
        return (unsigned)n;
    }

    void clearPlayout()
    {
        std::lock_guard<std::mutex> lock(mu_);
        out_.clear();
        out_pos_ = 0;
    }

    unsigned playoutPending()
    {
        std::lock_guard<std::mutex> lock(mu_);
        return (unsigned)(out_.size() - out_pos_);
    }

    /* Capture on/off (off: frames written to the tap are discarded). */
    void setCapture(bool on)
    {
        std::lock_guard<std::mutex> lock(mu_);
        capture_ = on;
        if (!on) {
            cap_.clear();
            cap_pos_ = 0;
        }
    }

    unsigned long long droppedBytes() { std::lock_guard<std::mutex> l(mu_); return dropped_; }
    unsigned long long capturedBytes() { std::lock_guard<std::mutex> l(mu_); return captured_; }
    unsigned long long underruns() { std::lock_guard<std::mutex> l(mu_); return underruns_; }

private:
    static pj_status_t on_put(pjmedia_port *port, pjmedia_frame *frame)
    {
        FrameTap *self = (FrameTap *)port->port_data.pdata;
        std::lock_guard<std::mutex> lock(self->mu_);
        if (!self->capture_)
            return PJ_SUCCESS;
        size_t n = self->spf_bytes_;
        if (frame->type == PJMEDIA_FRAME_TYPE_AUDIO && frame->size > 0)
            n = frame->size;
        size_t have = self->cap_.size() - self->cap_pos_;
        if (have + n > self->cap_max_) {
            /* Nobody read for too long: drop the oldest audio, keep the newest. The drop
               moves a start offset; the dead front is cut off once it is half the buffer,
               so a full tap costs the clock thread O(1) per frame. (Erasing the front on
               every frame memmoved the whole buffer: with the pjsua2 thread late to read,
               2,000 full taps kept the conference clock busy, holding the bridge mutex the
               pjsua2 thread waited for to read them, and the daemon never recovered.) */
            size_t cut = have + n - self->cap_max_;
            if (cut > have)
                cut = have;
            self->cap_pos_ += cut;
            self->dropped_ += cut;
        }
        if (self->cap_pos_ > 0 && self->cap_pos_ >= self->cap_.size() / 2) {
            self->cap_.erase(0, self->cap_pos_);
            self->cap_pos_ = 0;
        }
        if (frame->type == PJMEDIA_FRAME_TYPE_AUDIO && frame->size > 0)
            self->cap_.append((const char *)frame->buf, frame->size);
        else
            self->cap_.append(n, '\0');     /* keep the timeline: silence */
        self->captured_ += n;
        return PJ_SUCCESS;
    }

    static pj_status_t on_get(pjmedia_port *port, pjmedia_frame *frame)
    {
        FrameTap *self = (FrameTap *)port->port_data.pdata;
        std::lock_guard<std::mutex> lock(self->mu_);
        size_t want = self->spf_bytes_;
        size_t have = self->out_.size() - self->out_pos_;
        if (have == 0) {
            frame->type = PJMEDIA_FRAME_TYPE_NONE;
            frame->size = 0;
            return PJ_SUCCESS;
        }
        size_t n = have < want ? have : want;
        std::memcpy(frame->buf, self->out_.data() + self->out_pos_, n);
        if (n < want) {
            std::memset((char *)frame->buf + n, 0, want - n);
            self->underruns_++;
        }
        self->out_pos_ += n;
        if (self->out_pos_ == self->out_.size()) {
            self->out_.clear();
            self->out_pos_ = 0;
        }
        frame->type = PJMEDIA_FRAME_TYPE_AUDIO;
        frame->size = want;
        return PJ_SUCCESS;
    }

    static pj_status_t on_destroy(pjmedia_port *port)
    {
        PJ_UNUSED_ARG(port);
        return PJ_SUCCESS;
    }

    pjmedia_port port_;
    pj_pool_t *pool_;
    bool created_;
    bool capture_;
    size_t spf_bytes_;
    size_t cap_max_;
    size_t cap_pos_;            /* start of the audio not yet read in cap_ (before: dropped) */
    size_t out_max_;
    std::string cap_;
    std::string out_;
    size_t out_pos_;
    unsigned long long dropped_;
    unsigned long long underruns_;
    unsigned long long captured_;
    std::mutex mu_;
};

/*
 * DenoiseSink: what a call leg hears, noise-suppressed on pjmedia's clock thread.
 *
 * VoiceFocus on a bridged call: the other leg must hear the suppressed audio with at most
 * one 20 ms frame of added delay. A Python tap cannot do that (it reads every 40 ms), and
 * a conference port used as sink then source adds a clock tick on top of the suppressor's
 * own frame. So this port takes the leg's place as a *sink* in the conference bridge:
 * createSink(call) registers a port with the leg's stream format and disables transmission
 * to the leg's own slot; everything the leg should hear is connected to this port instead;
 * put_frame() runs speexdsp's noise suppressor on the mixed frame (one frame of latency,
 * speex's weighted overlap-add) and hands it straight to the leg's stream in the same tick.
 * The leg's own slot stays the source of its audio (receiving is unchanged).
 *
 * put_frame() runs with the conference mutex held (recursive), and pjsua removes the
 * stream's slot, under that mutex, before it destroys the stream: each frame first checks
 * that the leg's slot is still the one it was made for, and drops the frame otherwise.
 */
class DenoiseSink : public pj::AudioMedia
{
public:
    DenoiseSink() : pool_(NULL), created_(false), st_(NULL), stream_port_(NULL), orig_slot_(-1),
                    name_ptr_(NULL), enabled_(true), spf_(160), processed_(0)
    {
        std::memset(&port_, 0, sizeof(port_));
    }

    virtual ~DenoiseSink()
    {
        destroySink();
    }

    void createSink(int call_id, int suppress_db) PJSUA2_THROW(pj::Error)
    {
        if (created_)
            throw pj::Error(PJ_EEXISTS, "DenoiseSink::createSink", "already created", "", 0);
        if (call_id < 0 || call_id >= (int)pjsua_var.ua_cfg.max_calls)
            throw pj::Error(PJ_EINVAL, "DenoiseSink::createSink", "bad call id", "", 0);
        pjsua_call *call = &pjsua_var.calls[call_id];
        pjmedia_stream *strm = NULL;
        int slot = -1;
        for (unsigned i = 0; i < call->med_cnt; ++i) {
            pjsua_call_media *m = &call->media[i];
            if (m->type == PJMEDIA_TYPE_AUDIO && m->strm.a.stream) {
                strm = m->strm.a.stream;
                slot = m->strm.a.conf_slot;
                break;
            }
        }
        if (!strm || slot < 0)
            throw pj::Error(PJ_ENOTFOUND, "DenoiseSink::createSink", "call has no audio stream", "", 0);
        pj_status_t status = pjmedia_stream_get_port(strm, &stream_port_);
        if (status != PJ_SUCCESS)
            throw pj::Error(status, "DenoiseSink::createSink", "pjmedia_stream_get_port", "", 0);
        pjmedia_conf_port_info info;
        status = pjmedia_conf_get_port_info(pjsua_var.mconf, (unsigned)slot, &info);
        if (status != PJ_SUCCESS)
            throw pj::Error(status, "DenoiseSink::createSink", "pjmedia_conf_get_port_info", "", 0);
        name_ptr_ = info.name.ptr;
        unsigned rate = PJMEDIA_PIA_SRATE(&stream_port_->info);
        unsigned spf = PJMEDIA_PIA_SPF(&stream_port_->info);
        unsigned channels = PJMEDIA_PIA_CCNT(&stream_port_->info);
        pool_ = pjsua_pool_create("denoise%p", 512, 512);
        if (!pool_)
            throw pj::Error(PJ_ENOMEM, "DenoiseSink::createSink", "no memory", "", 0);
        static char name[] = "chimevoice-denoise";
        pj_str_t pname = pj_str(name);
        pjmedia_port_info_init(&port_.info, &pname, PJMEDIA_SIGNATURE('C', 'V', 'D', 'N'),
                               rate, channels, 16, spf);
        port_.port_data.pdata = this;
        port_.put_frame = &DenoiseSink::on_put;
        port_.get_frame = &DenoiseSink::on_get;
        port_.on_destroy = &DenoiseSink::on_destroy;
        st_ = speex_preprocess_state_init((int)(spf / channels), (int)rate);
        if (!st_)
            throw pj::Error(PJ_ENOMEM, "DenoiseSink::createSink", "speex_preprocess_state_init", "", 0);
        int on = 1, off = 0, db = suppress_db;
        speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_DENOISE, &on);
        speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_AGC, &off);
        speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_DEREVERB, &off);
        speex_preprocess_ctl(st_, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &db);
        spf_ = spf;
        orig_slot_ = slot;
        registerMediaPort2(&port_, pool_);
        created_ = true;
        pjmedia_conf_configure_port(pjsua_var.mconf, (unsigned)orig_slot_, PJMEDIA_PORT_DISABLE,
                                    PJMEDIA_PORT_NO_CHANGE);
    }

    /* Suppression on (default) or off (frames pass through untouched). */
    void setEnabled(bool on) { enabled_.store(on); }

    void destroySink()
    {
        if (created_) {
            created_ = false;
            if (origAlive())
                pjmedia_conf_configure_port(pjsua_var.mconf, (unsigned)orig_slot_, PJMEDIA_PORT_ENABLE,
                                            PJMEDIA_PORT_NO_CHANGE);
            unregisterMediaPort();
        }
        if (st_) {
            speex_preprocess_state_destroy(st_);
            st_ = NULL;
        }
        if (pool_) {
            pj_pool_release(pool_);
            pool_ = NULL;
        }
    }

    unsigned long long framesProcessed() { return processed_.load(); }

private:
    bool origAlive()
    {
        pjmedia_conf_port_info info;
        return orig_slot_ >= 0
            && pjmedia_conf_get_port_info(pjsua_var.mconf, (unsigned)orig_slot_, &info) == PJ_SUCCESS
            && info.name.ptr == name_ptr_;
    }

    static pj_status_t on_put(pjmedia_port *port, pjmedia_frame *frame)
    {
        DenoiseSink *self = (DenoiseSink *)port->port_data.pdata;
        if (!self->st_ || !self->origAlive())
            return PJ_SUCCESS;              /* the leg's stream is going away */
        if (self->enabled_.load() && frame->type == PJMEDIA_FRAME_TYPE_AUDIO
                && frame->size == self->spf_ * 2) {
            speex_preprocess_run(self->st_, (spx_int16_t *)frame->buf);
            self->processed_++;
        }
        return pjmedia_port_put_frame(self->stream_port_, frame);
    }

    static pj_status_t on_get(pjmedia_port *port, pjmedia_frame *frame)
    {
        PJ_UNUSED_ARG(port);
        frame->type = PJMEDIA_FRAME_TYPE_NONE;
        frame->size = 0;
        return PJ_SUCCESS;
    }

    static pj_status_t on_destroy(pjmedia_port *port)
    {
        PJ_UNUSED_ARG(port);
        return PJ_SUCCESS;
    }

    pjmedia_port port_;
    pj_pool_t *pool_;
    bool created_;
    SpeexPreprocessState *st_;
    pjmedia_port *stream_port_;
    int orig_slot_;
    const char *name_ptr_;
    std::atomic<bool> enabled_;
    unsigned spf_;
    std::atomic<unsigned long long> processed_;
};

/* Answer an incoming in-dialog request that pjsua leaves to the application
   (e.g. INFO with Content-Type application/dtmf): Call::onCallTsxState gives
   the transaction and rdata only as opaque pointers, and pjsua2 2.12 has no
   call to respond with. Returns a pj_status_t (0 = sent). */
int respondInDialog(void *tsx, void *rdata, int code)
{
    pjsip_transaction *t = (pjsip_transaction *)tsx;
    pjsip_rx_data *rd = (pjsip_rx_data *)rdata;
    pjsip_tx_data *tdata = NULL;
    if (!t || !rd)
        return PJ_EINVAL;
    if (t->role != PJSIP_ROLE_UAS || t->state >= PJSIP_TSX_STATE_COMPLETED)
        return PJ_EINVALIDOP;
    pj_status_t status = pjsip_endpt_create_response(pjsua_get_pjsip_endpt(), rd, code, NULL, &tdata);
    if (status == PJ_SUCCESS)
        status = pjsip_tsx_send_msg(t, tdata);
    return status;
}

/* The transport an incoming message really arrived on ("UDP", "TCP", "TLS", "UDP6", ...),
   not what its top Via claims: admission's TLS rule must not trust the sender.
   (pjsua2 2.12's SipRxData has no transport.) "" when unknown. */
const char *rxTransportName(void *rdata)
{
    pjsip_rx_data *rd = (pjsip_rx_data *)rdata;
    if (!rd || !rd->tp_info.transport || !rd->tp_info.transport->type_name)
        return "";
    return rd->tp_info.transport->type_name;
}

/* What pjsip parsed of an incoming request, printed back: which = 0 the Request-URI, 1 the From
   header, 2 the To header (whole header lines, "From: <sip:...>;tag=..."). pjsip unescapes %XX in
   a URI's user part *in place* in the receive buffer, so the message text (SipRxData.wholeMsg)
   then holds a damaged user ("sip:%2B15550100000@" reads "sip:+1555010000000@"); the parsed URI
   is right, and printing re-escapes only what must be. "" when absent. */
std::string rxParsedPart(void *rdata, int which)
{
    pjsip_rx_data *rd = (pjsip_rx_data *)rdata;
    if (!rd || !rd->msg_info.msg)
        return "";
    char buf[4096];
    int len = -1;
    if (which == 0) {
        if (rd->msg_info.msg->type != PJSIP_REQUEST_MSG || !rd->msg_info.msg->line.req.uri)
            return "";
        len = pjsip_uri_print(PJSIP_URI_IN_REQ_URI, rd->msg_info.msg->line.req.uri, buf, sizeof(buf));
    } else {
        pjsip_hdr *hdr = which == 1 ? (pjsip_hdr *)rd->msg_info.from : which == 2 ? (pjsip_hdr *)rd->msg_info.to : NULL;
        if (!hdr)
            return "";
        len = pjsip_hdr_print_on(hdr, buf, sizeof(buf));
    }
    return len > 0 ? std::string(buf, (size_t)len) : std::string();
}

/* Set the RFC 4733 event duration of a call's audio stream (call id as in
   Call::getId()); the next digits sent with Call::dialDtmf last that long.
   Returns a pj_status_t. Call on the pjsua2 thread. */
int setDtmfDuration(int call_id, unsigned msec)
{
    if (call_id < 0 || call_id >= (int)pjsua_var.ua_cfg.max_calls)
        return PJ_EINVAL;
    pjsua_call *call = &pjsua_var.calls[call_id];
    for (unsigned i = 0; i < call->med_cnt; ++i) {
        pjsua_call_media *m = &call->media[i];
        if (m->type == PJMEDIA_TYPE_AUDIO && m->strm.a.stream)
            return pjmedia_stream_set_dtmf_duration_msec(m->strm.a.stream, msec);
    }
    return PJ_ENOTFOUND;
}

/* Keep a call's in-dialog requests (our BYE, re-INVITE, INFO) on the connection its INVITE came
   on, when that is TCP or TLS: a TLS client's Contact is usually not reachable (NAT, no server
   certificate), and pjsip opens TLS connections only from a selected listener anyway (without
   one every BYE of an inbound TLS call failed with PJSIP_ETPNOTSUITABLE). The dialog holds a
   reference, so the connection also outlives pjsip's idle timeout. UDP calls are left alone.
   Call on the pjsua2 thread from onIncomingCall (call id as in Call::getId(), rdata from
   OnIncomingCallParam.rdata.pjRxData). Returns a pj_status_t; 0 also when nothing was pinned. */
int pinDialogTransport(int call_id, void *rdata)
{
    pjsip_rx_data *rd = (pjsip_rx_data *)rdata;
    if (call_id < 0 || call_id >= (int)pjsua_var.ua_cfg.max_calls || !rd || !rd->tp_info.transport)
        return PJ_EINVAL;
    pjsip_transport *tp = rd->tp_info.transport;
    if (tp->flag & PJSIP_TRANSPORT_DATAGRAM)
        return PJ_SUCCESS;
    pjsua_call *call = &pjsua_var.calls[call_id];
    if (!call->inv || !call->inv->dlg)
        return PJ_ENOTFOUND;
    pjsip_tpselector sel;
    pj_bzero(&sel, sizeof(sel));
    sel.type = PJSIP_TPSELECTOR_TRANSPORT;
    sel.u.transport = tp;
    return pjsip_dlg_set_transport(call->inv->dlg, &sel);
}

/* If the connection a call's dialog is pinned to (pinDialogTransport) has closed, let the next
   in-dialog request open a new one to the far end's Contact: from the listener of pjsua transport
   `listener_tid` (TLS needs one; -1: any). Call before sending an in-dialog request. Returns 1 if
   the dialog was unpinned, 0 if not (not pinned, or its connection is still up). */
int unpinClosedDialogTransport(int call_id, int listener_tid)
{
    if (call_id < 0 || call_id >= (int)pjsua_var.ua_cfg.max_calls)
        return 0;
    pjsua_call *call = &pjsua_var.calls[call_id];
    if (!call->inv || !call->inv->dlg)
        return 0;
    pjsip_dialog *dlg = call->inv->dlg;
    if (dlg->tp_sel.type != PJSIP_TPSELECTOR_TRANSPORT || !dlg->tp_sel.u.transport)
        return 0;
    pjsip_transport *tp = dlg->tp_sel.u.transport;
    if (!tp->is_shutdown && !tp->is_destroying)
        return 0;
    pjsip_tpselector sel;
    pj_bzero(&sel, sizeof(sel));
    if (listener_tid >= 0 && listener_tid < (int)PJ_ARRAY_SIZE(pjsua_var.tpdata)
        && pjsua_var.tpdata[listener_tid].data.ptr)
        pjsua_init_tpselector(listener_tid, &sel);   /* a listener for TCP/TLS transports */
    pjsip_dlg_set_transport(dlg, &sel);
    return 1;
}

/*
 * The admission gate: new INVITEs refused before pjsua makes a call of them.
 *
 * pjsua creates a call for every INVITE it is handed (a call slot, an INVITE session, a
 * media transport with its RTP sockets) before the application can answer it; refusing one
 * from Python then costs that set-up plus two thread crossings, about 1 ms of the pjsua2
 * thread, so a flood above the sustainable rate still slows every admitted caller. This
 * pjsip module sits just above pjsua's (priority PJSIP_MOD_PRIORITY_APPLICATION - 1) and
 * answers an out-of-dialog INVITE statelessly with 503 + Retry-After when the daemon is
 * draining, its source is locked out (wrong digest credentials, told by the manager), the
 * source's own token bucket is empty, or the daemon-wide bucket is: the checks and their
 * order are those of sip_rules/admission.py, which stays the specification (and the check
 * for INVITEs that bypass the gate: those carrying the bypass header from the bypass source,
 * the signed hairpin of a bridge to ourselves, which only the manager can verify; the header
 * from any other address is counted like any INVITE, so forging it buys a flood nothing).
 *
 * Everything runs on the thread that polls pjsip (the pjsua2 thread: threadCnt 0); the
 * mutex only makes that assumption harmless. The module and its state are process-wide,
 * as pjsip modules are; gateConfigure() registers it once.
 */
struct GateBucket {
    double tokens;
    double stamp;
};

struct GateState {
    std::mutex mu;
    bool registered = false;
    bool accepting = true;
    int draining_retry_after = 5;
    double rate = 0.0, burst = 0.0;                 /* rate 0: the daemon-wide check is off */
    GateBucket overall = {0.0, 0.0};
    double src_rate = 0.0, src_burst = 0.0;         /* src_rate 0: per-source check off */
    std::unordered_map<std::string, GateBucket> sources;
    std::unordered_map<std::string, double> locked;  /* source -> locked until */
    std::string bypass;                             /* header name that passes uncounted ... */
    std::string bypass_source;                      /* ... from this address only (our own) */
    unsigned long long refused[4] = {0, 0, 0, 0};   /* draining, auth_lockout, source_rate, rate */
    unsigned long long passed = 0;
    std::string last_source, last_call_id;
    int last_retry_after = 0;
};
static GateState g_gate;
static const size_t GATE_MAX_SOURCES = 10000;

static double gate_now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/* Take a token: 0 when taken, else the seconds until one is there. */
static double gate_take(GateBucket &b, double rate, double burst, double now)
{
    if (now > b.stamp) {
        b.tokens = std::min(burst, b.tokens + (now - b.stamp) * rate);
        b.stamp = now;
    }
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return 0.0;
    }
    return (1.0 - b.tokens) / rate;
}

static int gate_retry(double wait)
{
    int s = (int)std::ceil(wait);
    return s < 1 ? 1 : s;
}

static pj_bool_t gate_refuse(pjsip_rx_data *rd, int cause, int retry_after)
{
    GateState &g = g_gate;
    g.refused[cause]++;
    g.last_source.assign(rd->pkt_info.src_name);
    if (rd->msg_info.cid)
        g.last_call_id.assign(rd->msg_info.cid->id.ptr, (size_t)rd->msg_info.cid->id.slen);
    else
        g.last_call_id.clear();
    g.last_retry_after = retry_after;
    char value[16];
    pj_ansi_snprintf(value, sizeof(value), "%d", retry_after);
    pj_str_t hname = pj_str((char *)"Retry-After");
    pj_str_t hvalue = pj_str(value);
    pjsip_generic_string_hdr retry;
    pjsip_generic_string_hdr_init2(&retry, &hname, &hvalue);
    pjsip_hdr list;
    pj_list_init(&list);
    pj_list_push_back(&list, &retry);
    pjsip_generic_string_hdr ua;
    if (pjsua_var.ua_cfg.user_agent.slen) {
        pj_str_t uname = pj_str((char *)"User-Agent");
        pjsip_generic_string_hdr_init2(&ua, &uname, &pjsua_var.ua_cfg.user_agent);
        pj_list_push_back(&list, &ua);
    }
    pjsip_endpt_respond_stateless(pjsua_get_pjsip_endpt(), rd, PJSIP_SC_SERVICE_UNAVAILABLE, NULL, &list, NULL);
    return PJ_TRUE;
}

static pj_bool_t gate_on_rx_request(pjsip_rx_data *rd)
{
    pjsip_msg *msg = rd->msg_info.msg;
    if (!msg || msg->line.req.method.id != PJSIP_INVITE_METHOD)
        return PJ_FALSE;
    if ((rd->msg_info.to && rd->msg_info.to->tag.slen) || pjsip_rdata_get_dlg(rd) || pjsip_rdata_get_tsx(rd))
        return PJ_FALSE;                             /* in a dialog (a re-INVITE): not a new call */
    GateState &g = g_gate;
    std::lock_guard<std::mutex> lock(g.mu);
    if (!g.accepting)
        return gate_refuse(rd, 0, g.draining_retry_after);
    std::string src(rd->pkt_info.src_name);
    if (!g.bypass.empty() && src == g.bypass_source) {
        pj_str_t name = pj_str((char *)g.bypass.c_str());
        if (pjsip_msg_find_hdr_by_name(msg, &name, NULL))
            return PJ_FALSE;
    }
    double now = gate_now();
    auto lk = g.locked.find(src);
    if (lk != g.locked.end()) {
        if (lk->second > now)
            return gate_refuse(rd, 1, gate_retry(lk->second - now));
        g.locked.erase(lk);
    }
    GateBucket *sb = NULL;
    if (g.src_rate > 0) {
        auto it = g.sources.find(src);
        if (it == g.sources.end()) {
            if (g.sources.size() >= GATE_MAX_SOURCES) {
                /* forget the quiet sources (full buckets); if none is quiet, start over */
                for (auto i = g.sources.begin(); i != g.sources.end();) {
                    if (i->second.tokens + (now - i->second.stamp) * g.src_rate >= g.src_burst)
                        i = g.sources.erase(i);
                    else
                        ++i;
                }
                if (g.sources.size() >= GATE_MAX_SOURCES)
                    g.sources.clear();
            }
            it = g.sources.emplace(src, GateBucket{g.src_burst, now}).first;
        }
        sb = &it->second;
        double wait = gate_take(*sb, g.src_rate, g.src_burst, now);
        if (wait > 0)
            return gate_refuse(rd, 2, gate_retry(wait));
    }
    if (g.rate > 0) {
        double wait = gate_take(g.overall, g.rate, g.burst, now);
        if (wait > 0) {
            if (sb)
                sb->tokens = std::min(g.src_burst, sb->tokens + 1.0);   /* a refused call costs its source nothing */
            return gate_refuse(rd, 3, gate_retry(wait));
        }
    }
    g.passed++;
    return PJ_FALSE;
}

static pjsip_module g_gate_module = {
    NULL, NULL,
    { (char *)"mod-chimevoice-gate", 19 },
    -1,
    PJSIP_MOD_PRIORITY_APPLICATION - 1,
    NULL, NULL, NULL, NULL,
    &gate_on_rx_request,
    NULL, NULL, NULL, NULL,
};

/* Set the gate's limits (0 switches a rate check off; buckets start full) and whether new
   calls are accepted (else: 503, Retry-After draining_retry_after). bypass: a header name
   whose INVITEs from bypass_source (an address as pjsip prints it, no port) pass uncounted
   ("" none). Registers the module on first use. Call on the pjsua2 thread after libInit.
   Returns a pj_status_t. */
int gateConfigure(bool accepting, int draining_retry_after, double rate, double burst,
                  double source_rate, double source_burst, const std::string &bypass,
                  const std::string &bypass_source)
{
    GateState &g = g_gate;
    {
        std::lock_guard<std::mutex> lock(g.mu);
        double now = gate_now();
        g.accepting = accepting;
        g.draining_retry_after = draining_retry_after < 1 ? 1 : draining_retry_after;
        if (g.rate != rate || g.burst != burst || !g.registered) {
            g.rate = rate;
            g.burst = burst;
            g.overall = GateBucket{burst, now};
        }
        if (g.src_rate != source_rate || g.src_burst != source_burst) {
            g.src_rate = source_rate;
            g.src_burst = source_burst;
            g.sources.clear();
        }
        g.bypass = bypass;
        g.bypass_source = bypass_source;
    }
    if (!g.registered) {
        pj_status_t status = pjsip_endpt_register_module(pjsua_get_pjsip_endpt(), &g_gate_module);
        if (status != PJ_SUCCESS)
            return status;
        g.registered = true;
    }
    return PJ_SUCCESS;
}

/* Refuse INVITEs from `source` (an address as pjsip prints it, no port) for `seconds`
   (0: lift a lockout). */
void gateLockSource(const std::string &source, double seconds)
{
    GateState &g = g_gate;
    std::lock_guard<std::mutex> lock(g.mu);
    double now = gate_now();
    if (seconds <= 0) {
        g.locked.erase(source);
        return;
    }
    if (g.locked.size() >= GATE_MAX_SOURCES) {
        for (auto i = g.locked.begin(); i != g.locked.end();)
            i = i->second <= now ? g.locked.erase(i) : std::next(i);
    }
    if (g.locked.size() < GATE_MAX_SOURCES || g.locked.count(source))
        g.locked[source] = now + seconds;
}

/* What the gate did since it was registered: counters only grow. */
struct GateReport {
    unsigned long long draining;
    unsigned long long authLockout;
    unsigned long long sourceRate;
    unsigned long long rate;
    unsigned long long passed;
    std::string lastSource;     /* the last refused INVITE's source address and Call-ID */
    std::string lastCallId;
    int lastRetryAfter;
};

GateReport gateReport()
{
    GateState &g = g_gate;
    std::lock_guard<std::mutex> lock(g.mu);
    GateReport r;
    r.draining = g.refused[0];
    r.authLockout = g.refused[1];
    r.sourceRate = g.refused[2];
    r.rate = g.refused[3];
    r.passed = g.passed;
    r.lastSource = g.last_source;
    r.lastCallId = g.last_call_id;
    r.lastRetryAfter = g.last_retry_after;
    return r;
}

/* The sum of the refusal counters (cheap to poll: the pjsua2 loop asks every round). */
unsigned long long gateRefusedTotal()
{
    GateState &g = g_gate;
    std::lock_guard<std::mutex> lock(g.mu);
    return g.refused[0] + g.refused[1] + g.refused[2] + g.refused[3];
}

} /* namespace chimevoice */
%}

#ifdef SWIGPYTHON
%nothread chimevoice::FrameTap::read;
%nothread chimevoice::FrameTap::write;

namespace chimevoice {
class FrameTap : public pj::AudioMedia
{
public:
    FrameTap();
    virtual ~FrameTap();
    void createTap(unsigned clock_rate, unsigned samples_per_frame,
                   unsigned capture_ms, unsigned playout_ms) PJSUA2_THROW(pj::Error);
    PyObject *read();
    unsigned write(PyObject *data);
    void clearPlayout();
    unsigned playoutPending();
    void setCapture(bool on);
    unsigned long long droppedBytes();
    unsigned long long capturedBytes();
    unsigned long long underruns();
};
class DenoiseSink : public pj::AudioMedia
{
public:
    DenoiseSink();
    virtual ~DenoiseSink();
    void createSink(int call_id, int suppress_db) PJSUA2_THROW(pj::Error);
    void setEnabled(bool on);
    void destroySink();
    unsigned long long framesProcessed();
};
int respondInDialog(void *tsx, void *rdata, int code);
const char *rxTransportName(void *rdata);
std::string rxParsedPart(void *rdata, int which);
int pinDialogTransport(int call_id, void *rdata);
int unpinClosedDialogTransport(int call_id, int listener_tid);
int setDtmfDuration(int call_id, unsigned msec);
struct GateReport {
    unsigned long long draining;
    unsigned long long authLockout;
    unsigned long long sourceRate;
    unsigned long long rate;
    unsigned long long passed;
    std::string lastSource;
    std::string lastCallId;
    int lastRetryAfter;
};
int gateConfigure(bool accepting, int draining_retry_after, double rate, double burst,
                  double source_rate, double source_burst, const std::string &bypass,
                  const std::string &bypass_source);
void gateLockSource(const std::string &source, double seconds);
GateReport gateReport();
unsigned long long gateRefusedTotal();
}
#endif
