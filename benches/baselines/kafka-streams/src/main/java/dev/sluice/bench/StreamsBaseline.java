package dev.sluice.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;

/**
 * W1/W2 as a Kafka Streams application, Kafka to Kafka; benches/baselines/run.py starts it.
 *
 * <p>Written the way the Kafka Streams docs show a stateless app: a {@link StreamsBuilder} with
 * byte-array serdes (the key goes through untouched), Jackson per value in {@code mapValues} /
 * {@code filter}, {@code to} the output topic, one stream thread. Kafka Streams' defaults are
 * kept apart from the consumer's session timeout. It stops once N input records have been seen:
 * the main thread then closes the client, which commits (flushing the producer; with
 * exactly_once_v2, committing the transaction). Then it prints {@code {"consumed": n,
 * "produced": m}} on stdout, m being the records that reached the sink.
 *
 * <pre>
 *   java -cp 'target/classes:target/libs/*' dev.sluice.bench.StreamsBaseline --workload {w1,w2} \
 *       --brokers B --input IN --output OUT --count N --app-id ID \
 *       --guarantee {at_least_once,exactly_once_v2} [--session-timeout-ms MS]
 * </pre>
 */
public final class StreamsBaseline {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> REQUIRED =
            List.of("workload", "brokers", "input", "output", "count", "app-id", "guarantee");

    private final AtomicLong consumed = new AtomicLong();
    private final AtomicLong produced = new AtomicLong();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    /** Released by the stream thread (N inputs seen, or an error); the main thread then closes. */
    private final CountDownLatch done = new CountDownLatch(1);
    private final long count;

    private StreamsBaseline(long count) {
        this.count = count;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = parse(argv);
        if (args == null) {
            System.err.println("usage: StreamsBaseline --workload w1|w2 --brokers B --input IN --output OUT"
                    + " --count N --app-id ID --guarantee at_least_once|exactly_once_v2"
                    + " [--session-timeout-ms MS]");
            System.exit(2);
        }
        System.exit(new StreamsBaseline(Long.parseLong(args.get("count"))).run(args));
    }

    /** {@code --name value} pairs; null if one is unknown, missing or invalid. */
    private static Map<String, String> parse(String[] argv) {
        Map<String, String> args = new HashMap<>(Map.of("session-timeout-ms", "6000"));
        for (int i = 0; i + 1 < argv.length; i += 2) {
            String name = argv[i].startsWith("--") ? argv[i].substring(2) : "";
            if (!REQUIRED.contains(name) && !name.equals("session-timeout-ms")) {
                return null;
            }
            args.put(name, argv[i + 1]);
        }
        boolean valid = argv.length % 2 == 0
                && args.keySet().containsAll(REQUIRED)
                && List.of("w1", "w2").contains(args.get("workload"))
                && List.of(StreamsConfig.AT_LEAST_ONCE, StreamsConfig.EXACTLY_ONCE_V2).contains(args.get("guarantee"))
                && args.get("count").matches("[1-9][0-9]*")
                && args.get("session-timeout-ms").matches("[1-9][0-9]*");
        return valid ? args : null;
    }

    private int run(Map<String, String> args) throws IOException, InterruptedException {
        // The topology is stateless; the state directory would otherwise be /tmp/kafka-streams.
        Path stateDir = Files.createTempDirectory("kafka-streams-state-");
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("brokers"));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.get("guarantee"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG),
                Integer.parseInt(args.get("session-timeout-ms")));

        KafkaStreams streams = new KafkaStreams(topology(args), props);
        streams.setUncaughtExceptionHandler(e -> {
            failure.compareAndSet(null, e);
            done.countDown();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        try {
            streams.start();
            done.await();
        } finally {
            // Not from a stream thread: close() waits for them to commit and stop.
            streams.close();
            deleteTree(stateDir);
        }
        if (failure.get() != null) {
            System.err.println("StreamsBaseline: stream thread failed: " + failure.get());
            return 1;
        }
        System.out.println("{\"consumed\": " + consumed.get() + ", \"produced\": " + produced.get() + "}");
        return 0;
    }

    private Topology topology(Map<String, String> args) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<byte[], byte[]> in = builder
                .stream(args.get("input"), Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .peek((key, value) -> {
                    if (consumed.incrementAndGet() == count) {
                        done.countDown();
                    }
                });
        KStream<byte[], byte[]> out = args.get("workload").equals("w1")
                ? in.mapValues(value -> write(read(value)))
                : in.mapValues(StreamsBaseline::read)
                        .filter((key, event) -> event.path("status").asDouble() >= 500)
                        .mapValues(event -> write(reshape(event)));
        out.peek((key, value) -> produced.incrementAndGet())
                .to(args.get("output"), Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        return builder.build();
    }

    /** {ts, service, msg, latency_ms: (.latency * 1000)} */
    private static JsonNode reshape(JsonNode event) {
        ObjectNode out = JSON.createObjectNode();
        out.set("ts", event.get("ts"));
        out.set("service", event.get("service"));
        out.set("msg", event.get("msg"));
        out.put("latency_ms", event.path("latency").asDouble() * 1000);
        return out;
    }

    private static JsonNode read(byte[] value) {
        try {
            return JSON.readTree(value);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] write(JsonNode event) {
        try {
            return JSON.writeValueAsBytes(event);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
