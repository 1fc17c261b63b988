import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * flowgate — sign a visitor context on the host site's server (Java 11+, JDK only:
 * {@code javax.crypto.Mac}). Copy this file into your host application (add your package line).
 *
 * <p>An unsigned {@code data-visitor-context} is built in the browser, so anyone can claim any
 * {@code ims_email}. On a site whose flowgate mode is {@code optional} or {@code required}, sign
 * the context with the secret you share with flowgate: a standard JWT (HS256 by default) whose
 * private claims are the context, with {@code aud} = your site id, {@code iat}, {@code exp} and a
 * {@code kid} naming the key.
 *
 * <pre>
 *     Map&lt;String, String&gt; context = new LinkedHashMap&lt;&gt;();   // the order operators see
 *     context.put("account_id", u.id());
 *     context.put("ims_email", u.email());
 *     String token = Sign.signContext(context, "YOUR_SITEID", "key-2026-11",
 *             System.getenv("FLOWGATE_SITE_KEY_2026_11"), 300, "HS256", null);
 *     // &lt;script src=".../flowwidget.js" data-siteid="YOUR_SITEID"
 *     //         data-visitor-context-token="${token}"&gt;&lt;/script&gt;
 * </pre>
 *
 * <p>Why no JWT library: the usual ones (jjwt, java-jwt, nimbus-jose-jwt) come from Maven
 * Central, and an HS256 JWT with string claims is a few lines of the JDK's own HMAC. A project
 * that already uses one of them can build the same token with it: header {@code alg}, {@code
 * typ}, {@code kid}; claims the context, then {@code aud}, {@code iat}, {@code exp}.
 *
 * <p>Keep the TTL short (seconds). Rotation: add the new key to flowgate under a new kid, sign
 * with it, and remove the old kid from flowgate once no page can still hold a token signed with it.
 */
public final class Sign {
    private Sign() {}

    /** Claims flowgate treats as registered; they cannot be context keys. */
    public static final List<String> REGISTERED_CLAIMS =
            Arrays.asList("iss", "sub", "aud", "exp", "nbf", "iat", "jti");

    /**
     * Signs {@code context} (in its iteration order) for {@code siteId}; the compact JWT.
     *
     * @param alg HS256, HS384 or HS512
     * @param now unix seconds, or null for the clock
     */
    public static String signContext(Map<String, String> context, String siteId, String kid,
            String secret, long ttlSeconds, String alg, Long now) {
        String javaAlg;
        switch (alg) {
            case "HS256": javaAlg = "HmacSHA256"; break;
            case "HS384": javaAlg = "HmacSHA384"; break;
            case "HS512": javaAlg = "HmacSHA512"; break;
            default: throw new IllegalArgumentException("flowgate accepts HS256, HS384 and HS512 only");
        }
        if (secret == null || secret.isEmpty()) {
            throw new IllegalArgumentException("no signing secret (an unset variable?)");
        }
        long iat = now != null ? now : System.currentTimeMillis() / 1000;
        StringBuilder claims = new StringBuilder("{");
        for (Map.Entry<String, String> e : context.entrySet()) {
            if (REGISTERED_CLAIMS.contains(e.getKey())) {
                throw new IllegalArgumentException("context key " + e.getKey() + " is a registered claim");
            }
            claims.append(json(e.getKey())).append(':').append(json(e.getValue())).append(',');
        }
        claims.append("\"aud\":").append(json(siteId)).append(",\"iat\":").append(iat)
                .append(",\"exp\":").append(iat + ttlSeconds).append('}');
        String header = "{\"alg\":" + json(alg) + ",\"typ\":\"JWT\",\"kid\":" + json(kid) + "}";
        String signingInput = b64url(header.getBytes(StandardCharsets.UTF_8)) + "."
                + b64url(claims.toString().getBytes(StandardCharsets.UTF_8));
        try {
            Mac mac = Mac.getInstance(javaAlg);
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), javaAlg));
            return signingInput + "." + b64url(mac.doFinal(signingInput.getBytes(StandardCharsets.US_ASCII)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(javaAlg + " is part of every JDK", e);
        }
    }

    private static String b64url(byte[] bytes) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    /** A JSON string literal. */
    private static String json(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }
}
