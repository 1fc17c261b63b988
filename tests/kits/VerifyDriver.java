import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Test driver: one job on stdin (tests/kits/README.md, "Job format") →
 * examples/upstream/Verify.java → one JSON answer on stdout.
 */
public final class VerifyDriver {
    private static final class Request {
        String method;
        String target;
        final Map<String, List<String>> headers = new LinkedHashMap<>();
    }

    static String str(String s) {
        if (s == null) {
            return "null";
        }
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

    static String pairs(Map<String, String> m) {
        if (m == null) {
            return "null";
        }
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, String> e : m.entrySet()) {
            out.add("[" + str(e.getKey()) + "," + str(e.getValue()) + "]");
        }
        return "[" + String.join(",", out) + "]";
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        List<String> secrets = new ArrayList<>();
        List<Request> requests = new ArrayList<>();
        Long now = null;
        long tolerance = 300;
        boolean acceptV1 = false;
        boolean replay = false;
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.split("\t", -1);
            switch (f[0]) {
                case "secret": secrets.add(f[1]); break;
                case "secret_unset": secrets.add(System.getenv("FLOWGATE_KITS_UNSET")); break;
                case "now": now = Long.parseLong(f[1]); break;
                case "tolerance": tolerance = Long.parseLong(f[1]); break;
                case "accept_v1": acceptV1 = true; break;
                case "replay": replay = f[1].equals("memory"); break;
                case "request":
                    Request r = new Request();
                    r.method = f[1];
                    r.target = f[2];
                    requests.add(r);
                    break;
                case "header":
                    String value = String.join("\t", java.util.Arrays.copyOfRange(f, 2, f.length));
                    requests.get(requests.size() - 1).headers
                            .computeIfAbsent(f[1], k -> new ArrayList<>()).add(value);
                    break;
                default:
            }
        }
        Verify.Options o;
        try {
            o = new Verify.Options(secrets);
        } catch (Verify.ConfigError e) {
            System.out.println("{\"config_error\":" + str(e.getMessage()) + "}");
            return;
        }
        o.now = now;
        o.tolerance = tolerance;
        o.acceptV1 = acceptV1;
        if (replay) {
            o.replay = new Verify.MemoryReplayCache(tolerance, 100000);
        }
        List<String> results = new ArrayList<>();
        for (Request r : requests) {
            try {
                Verify.TrustedContext t = Verify.verify(r.method, r.target, Verify.headersOf(r.headers), o);
                results.add("{\"ok\":true,\"result\":{\"site\":" + str(t.site)
                        + ",\"session\":" + str(t.session) + ",\"status\":" + str(t.status)
                        + ",\"discard_reason\":" + str(t.discardReason)
                        + ",\"context\":" + pairs(t.context)
                        + ",\"verified_prefill\":" + pairs(t.verifiedPrefill())
                        + ",\"browser_prefill\":" + pairs(t.browserPrefill(true))
                        + ",\"request_id\":" + str(t.requestId) + ",\"client_ip\":" + str(t.clientIp)
                        + ",\"signed_at\":" + t.signedAt + ",\"version\":" + str(t.version) + "}}");
            } catch (Verify.VerifyError e) {
                results.add("{\"ok\":false,\"reason\":" + str(e.reason) + "}");
            }
        }
        System.out.println("{\"results\":[" + String.join(",", results) + "]}");
    }
}
