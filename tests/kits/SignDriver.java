import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Test driver: {@code SignDriver SITE KID TTL NOW key=value…} with the secret in
 * FLOWGATE_KITS_SECRET → examples/host/Sign.java → the token on stdout.
 */
public final class SignDriver {
    public static void main(String[] args) {
        Map<String, String> context = new LinkedHashMap<>();
        for (int i = 4; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            context.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        System.out.println(Sign.signContext(context, args[0], args[1],
                System.getenv("FLOWGATE_KITS_SECRET"), Long.parseLong(args[2]), "HS256",
                Long.parseLong(args[3])));
    }
}
