import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * flowgate — verify a request the backend received from flowgate (Java 11+, JDK only:
 * {@code javax.crypto.Mac} and {@code MessageDigest.isEqual}). Copy this file into your backend
 * (add your package line).
 *
 * <p>flowgate signs the whole request it forwards with HMAC-SHA256 and sends
 * {@code X-Flowgate-Signature: t=<unix>,v2=<64 hex>} ({@code t=…,v1=…,v2=…} during a transition).
 * The signed string v2 is, joined with "\n" (no newline at the end):
 *
 * <pre>
 *     v2, t, request id, method, host, target, client address,
 *     Site, Session, Status, Context, Prefill
 * </pre>
 *
 * (README "Header signature"; the same as examples/upstream/verify.php). v1 (only with
 * {@code acceptV1}) is "v1", t, path, Site, Session, Status, Context, Prefill.
 *
 * <p>Usage (a servlet filter, Spring, …):
 *
 * <pre>
 *     // Once: the same list as flowgate's FLOWGATE_SIGNING_SECRET (comma-separated, newest
 *     // first). An empty list or a secret under 32 bytes throws Verify.ConfigError here.
 *     Verify.Options options = new Verify.Options(Verify.secretsFromEnv("FLOWGATE_SIGNING_SECRET"));
 *     Verify.TrustedContext trusted = null;
 *     try {
 *         trusted = Verify.verify(req.getMethod(), target, name -> headerValues(req, name), options);
 *     } catch (Verify.VerifyError e) {
 *         log.warn("flowgate headers rejected: " + e.reason);   // never log header values
 *     }
 *     Map&lt;String, String&gt; prefill = trusted == null ? null : trusted.verifiedPrefill();
 *     if (prefill != null &amp;&amp; prefill.containsKey("visitor_email")) { ... skip the email question ... }
 * </pre>
 *
 * where {@code target} is the request target as received ({@code getRequestURI()} plus "?" and
 * {@code getQueryString()} when there is one) and the lookup returns every value of a header
 * ({@code Collections.list(req.getHeaders(name))}).
 *
 * <p>Rotation: list the new secret first and keep the old one until every flowgate instance
 * signs with it; a signature made with any listed secret is accepted.
 */
public final class Verify {
    private Verify() {}

    /** A secret list or option that must not be verified with; thrown before any verification. */
    public static final class ConfigError extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        ConfigError(String message) {
            super(message);
        }
    }

    /**
     * Why a request was rejected; {@code reason} is a stable snake_case name, the same in every
     * kit: missing_signature | malformed_signature | unsupported_version | expired |
     * bad_signature | replayed | bad_header.
     */
    public static final class VerifyError extends Exception {
        private static final long serialVersionUID = 1L;

        public final String reason;

        VerifyError(String reason, String message) {
            super(message);
            this.reason = reason;
        }
    }

    /** Every value of one request header (any case of the name); empty when absent. */
    public interface Headers {
        List<String> values(String name);
    }

    /** Remembers signed request ids: atomically remembers one and says if it was known. */
    public interface ReplayCache {
        boolean seen(String requestId, long t);
    }

    /** In-process replay cache: ids older than 2 × tolerance are forgotten, at most maxEntries. */
    public static final class MemoryReplayCache implements ReplayCache {
        private final long window;
        private final int maxEntries;
        private final ArrayDeque<String> order = new ArrayDeque<>();
        private final Map<String, Long> ids = new HashMap<>();
        private long newest;

        public MemoryReplayCache(long tolerance, int maxEntries) {
            this.window = 2 * tolerance;
            this.maxEntries = Math.max(1, maxEntries);
        }

        @Override
        public synchronized boolean seen(String requestId, long t) {
            newest = Math.max(newest, t);
            while (!order.isEmpty() && ids.get(order.peekFirst()) < newest - window) {
                ids.remove(order.pollFirst());
            }
            if (ids.containsKey(requestId)) {
                return true;
            }
            while (order.size() >= maxEntries) {
                ids.remove(order.pollFirst());
            }
            ids.put(requestId, t);
            order.addLast(requestId);
            return false;
        }
    }

    /** How to verify: secrets (checked here, once) and settings (public fields). */
    public static final class Options {
        final List<byte[]> secrets = new ArrayList<>();
        /** Seconds either side of now. */
        public long tolerance = 300;
        /** Unix time to check against (tests); the clock when null. */
        public Long now = null;
        public String prefix = "X-Flowgate-";
        /** Also accept a v1 signature when there is no v2 (transition only). */
        public boolean acceptV1 = false;
        /** Refuse a request id seen before; null: off. */
        public ReplayCache replay = null;
        public String requestIdHeader = "X-Request-Id";
        public String clientIpHeader = "X-Real-IP";

        /** Every secret currently accepted, newest first, each at least 32 bytes. */
        public Options(List<String> secrets) {
            if (secrets == null || secrets.isEmpty()) {
                throw new ConfigError("no verification secret given; use the list flowgate signs with (FLOWGATE_SIGNING_SECRET, newest first)");
            }
            int i = 0;
            for (String secret : secrets) {
                i++;
                if (secret == null || secret.isEmpty()) {
                    throw new ConfigError("verification secret #" + i + " is empty or missing (an unset variable?)");
                }
                byte[] bytes = secret.getBytes(StandardCharsets.UTF_8);
                if (bytes.length < 32) {
                    throw new ConfigError("verification secret #" + i + " is shorter than 32 bytes; flowgate refuses such secrets too");
                }
                this.secrets.add(bytes);
            }
        }
    }

    /** What a verified request carries. Pre-fill only through verifiedPrefill() / browserPrefill(). */
    public static final class TrustedContext {
        /** Null when absent. */
        public final String site;
        public final String session;
        /** accepted | verified | unverified | absent | discarded */
        public final String status;
        /** The edge's reason when discarded, else null. */
        public final String discardReason;
        /** Ordered; a browser's claims unless status is "verified". */
        public final Map<String, String> context;
        /** v2 only, else null. */
        public final String requestId;
        public final String clientIp;
        public final long signedAt;
        /** "v1" | "v2" */
        public final String version;
        private final Map<String, String> prefill;

        TrustedContext(String site, String session, String status, String discardReason,
                Map<String, String> context, String requestId, String clientIp, long signedAt,
                String version, Map<String, String> prefill) {
            this.site = site;
            this.session = session;
            this.status = status;
            this.discardReason = discardReason;
            this.context = context;
            this.requestId = requestId;
            this.clientIp = clientIp;
            this.signedAt = signedAt;
            this.version = version;
            this.prefill = prefill;
        }

        /** The pre-fill slots only when the host site signed the context (accepted; verified). */
        public Map<String, String> verifiedPrefill() {
            return "verified".equals(status) ? prefill : null;
        }

        /**
         * For sites documented as {@code mode: off}: the browser-written pre-fill of a plain
         * {@code accepted} status, when the caller says so. Never that of accepted; unverified.
         */
        public Map<String, String> browserPrefill(boolean acknowledgeUnsigned) {
            if (!acknowledgeUnsigned) {
                return null;
            }
            return "accepted".equals(status) || "verified".equals(status) ? prefill : null;
        }
    }

    /** A comma-separated secret list from the environment (blank entries skipped). */
    public static List<String> secretsFromEnv(String name) {
        List<String> out = new ArrayList<>();
        String raw = System.getenv(name);
        if (raw != null) {
            for (String s : raw.split(",")) {
                if (!s.trim().isEmpty()) {
                    out.add(s.trim());
                }
            }
        }
        return out;
    }

    private static String one(Headers headers, String name) throws VerifyError {
        List<String> values = headers.values(name);
        if (values == null || values.isEmpty()) {
            return null;
        }
        if (values.size() > 1) {
            throw new VerifyError("bad_header", "header " + name + " occurs more than once");
        }
        return values.get(0);
    }

    private static String orEmpty(String s) {
        return s == null ? "" : s;
    }

    /**
     * Verifies a request and decodes its trusted headers. {@code target}: "/path?query" exactly
     * as received; {@code headers}: every value of a header by name (Host included; any case).
     */
    public static TrustedContext verify(String method, String target, Headers headers, Options o)
            throws VerifyError {
        String p = o.prefix;
        String signature = one(headers, p + "Signature");
        String[] values = new String[5];
        String[] names = {"Site", "Session", "Status", "Context", "Prefill"};
        for (int i = 0; i < 5; i++) {
            values[i] = one(headers, p + names[i]);
        }
        String requestId = one(headers, o.requestIdHeader);
        String clientIp = one(headers, o.clientIpHeader);
        String host = one(headers, "Host");
        if (signature == null) {
            throw new VerifyError("missing_signature", "signature header missing");
        }

        // t=<digits>,v1=<hex>,v2=<hex>: t once, each version at most once, unknown keys ignored.
        long t = -1;
        Map<String, byte[]> macs = new HashMap<>();
        boolean other = false;
        for (String field : signature.split(",", -1)) {
            String f = field.trim();
            int eq = f.indexOf('=');
            if (eq < 0) {
                continue;
            }
            String name = f.substring(0, eq);
            String value = f.substring(eq + 1);
            if (name.equals("t")) {
                if (t >= 0 || !value.matches("[0-9]{1,18}")) {
                    throw new VerifyError("malformed_signature", "signature timestamp malformed");
                }
                t = Long.parseLong(value);
            } else if (name.equals("v1") || name.equals("v2")) {
                if (macs.containsKey(name) || !value.matches("[0-9a-fA-F]{64}")) {
                    throw new VerifyError("malformed_signature", "signature " + name + " malformed");
                }
                byte[] mac = new byte[32];
                for (int i = 0; i < 32; i++) {
                    mac[i] = (byte) Integer.parseInt(value.substring(2 * i, 2 * i + 2), 16);
                }
                macs.put(name, mac);
            } else if (name.matches("v[0-9]+")) {
                other = true;
            }
        }
        if (t < 0 || (macs.isEmpty() && !other)) {
            throw new VerifyError("malformed_signature", "signature needs t= and a version");
        }
        String version;
        if (macs.containsKey("v2")) {
            version = "v2";
        } else if (macs.containsKey("v1") && o.acceptV1) {
            version = "v1";
        } else {
            throw new VerifyError("unsupported_version", "no signature version this verifier checks");
        }

        int q = target.indexOf('?');
        String path = q < 0 ? target : target.substring(0, q);
        if (q == target.length() - 1) {
            target = path; // an empty query signs as none
        }
        List<String> parts = new ArrayList<>();
        if (version.equals("v2")) {
            Collections.addAll(parts, requestId, method, host, target, clientIp);
        } else {
            parts.add(path);
        }
        Collections.addAll(parts, values);
        StringBuilder signed = new StringBuilder(version).append('\n').append(t);
        for (String part : parts) {
            signed.append('\n').append(orEmpty(part));
        }
        byte[] message = signed.toString().getBytes(StandardCharsets.UTF_8);
        boolean ok = false;
        for (byte[] secret : o.secrets) {
            // MessageDigest.isEqual is constant-time; every secret is tried.
            ok = MessageDigest.isEqual(hmacSha256(secret, message), macs.get(version)) | ok;
        }
        if (!ok) {
            throw new VerifyError("bad_signature", "signature does not match the request");
        }

        long now = o.now != null ? o.now : System.currentTimeMillis() / 1000;
        if (Math.abs(now - t) > o.tolerance) {
            throw new VerifyError("expired", "signature is " + (now - t) + " s from now");
        }

        String statusText = orEmpty(values[2]);
        String status;
        String reason = null;
        switch (statusText) {
            case "accepted": status = "accepted"; break;
            case "accepted; verified": status = "verified"; break;
            case "accepted; unverified": status = "unverified"; break;
            case "absent": case "": status = "absent"; break;
            default:
                String d = "discarded; reason=";
                if (!statusText.startsWith(d) || statusText.length() == d.length()) {
                    throw new VerifyError("bad_header", "unknown status");
                }
                status = "discarded";
                reason = statusText.substring(d.length());
        }
        boolean v2 = version.equals("v2");
        TrustedContext trusted = new TrustedContext(values[0], values[1], status, reason,
                decodeObject(orEmpty(values[3])),
                v2 && requestId != null && !requestId.isEmpty() ? requestId : null,
                v2 && clientIp != null && !clientIp.isEmpty() ? clientIp : null,
                t, version, decodeObject(orEmpty(values[4])));

        if (o.replay != null) {
            if (!v2) {
                // v1 signs no request id: a replay could not be told apart.
                throw new VerifyError("unsupported_version", "replay protection needs v2");
            }
            if (trusted.requestId == null) {
                throw new VerifyError("bad_header", "no request id to check for replays");
            }
            if (o.replay.seen(trusted.requestId, t)) {
                throw new VerifyError("replayed", "request id seen before");
            }
        }
        return trusted;
    }

    private static byte[] hmacSha256(byte[] key, byte[] message) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(message);
        } catch (NoSuchAlgorithmException | InvalidKeyException e) {
            throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
        }
    }

    /** Base64 of a JSON object of strings → an ordered map ("" → empty). */
    static Map<String, String> decodeObject(String value) throws VerifyError {
        Map<String, String> out = new LinkedHashMap<>();
        if (value.isEmpty()) {
            return Collections.unmodifiableMap(out);
        }
        String json;
        try {
            json = new String(Base64.getDecoder().decode(value), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw undecodable();
        }
        // The JDK has no JSON reader; this one accepts exactly an object of strings.
        int[] at = {skip(json, 0)};
        expect(json, at, '{');
        if (peek(json, at) == '}') {
            at[0]++;
        } else {
            while (true) {
                String key = string(json, at);
                expect(json, at, ':');
                out.put(key, string(json, at));
                char c = peek(json, at);
                at[0]++;
                if (c == '}') {
                    break;
                }
                if (c != ',') {
                    throw undecodable();
                }
            }
        }
        if (skip(json, at[0]) != json.length()) {
            throw undecodable();
        }
        return Collections.unmodifiableMap(out);
    }

    private static VerifyError undecodable() {
        return new VerifyError("bad_header", "trusted header cannot be decoded");
    }

    private static int skip(String s, int i) {
        while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
            i++;
        }
        return i;
    }

    private static char peek(String s, int[] at) throws VerifyError {
        at[0] = skip(s, at[0]);
        if (at[0] >= s.length()) {
            throw undecodable();
        }
        return s.charAt(at[0]);
    }

    private static void expect(String s, int[] at, char c) throws VerifyError {
        if (peek(s, at) != c) {
            throw undecodable();
        }
        at[0]++;
    }

    private static String string(String s, int[] at) throws VerifyError {
        expect(s, at, '"');
        StringBuilder out = new StringBuilder();
        int i = at[0];
        while (true) {
            if (i >= s.length()) {
                throw undecodable();
            }
            char c = s.charAt(i++);
            if (c == '"') {
                break;
            }
            if (c < 0x20) {
                throw undecodable();
            }
            if (c != '\\') {
                out.append(c);
                continue;
            }
            if (i >= s.length()) {
                throw undecodable();
            }
            char e = s.charAt(i++);
            switch (e) {
                case '"': case '\\': case '/': out.append(e); break;
                case 'b': out.append('\b'); break;
                case 'f': out.append('\f'); break;
                case 'n': out.append('\n'); break;
                case 'r': out.append('\r'); break;
                case 't': out.append('\t'); break;
                case 'u':
                    if (i + 4 > s.length() || !s.substring(i, i + 4).matches("[0-9a-fA-F]{4}")) {
                        throw undecodable();
                    }
                    out.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                    i += 4;
                    break;
                default:
                    throw undecodable();
            }
        }
        at[0] = i;
        return out.toString();
    }

    /** The lookup for a plain map of header name → values (names in any case). */
    public static Headers headersOf(Map<String, List<String>> map) {
        Map<String, List<String>> lower = new HashMap<>();
        for (Map.Entry<String, List<String>> e : map.entrySet()) {
            lower.computeIfAbsent(e.getKey().toLowerCase(Locale.ROOT), k -> new ArrayList<>())
                    .addAll(e.getValue());
        }
        return name -> lower.getOrDefault(name.toLowerCase(Locale.ROOT), Collections.emptyList());
    }
}
