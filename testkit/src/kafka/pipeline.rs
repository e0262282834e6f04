//! Pipeline files from a Kafka input to a Kafka output on the same brokers, as the tests and
//! benchmarks write them: the fixed parts once, the lines a test adds in the blocks it adds them
//! to.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A Kafka-to-Kafka pipeline file being built; [`yaml`](Self::yaml) gives its text,
/// [`write`](Self::write) writes it.
///
/// Text handed to a block method is lines relative to that block (`start_from: earliest`,
/// `- jq: '.'`); they are indented where the block goes.
#[derive(Debug, Clone)]
pub struct KafkaPipeline {
    brokers: String,
    name: Option<String>,
    input: String,
    options: Vec<(String, String)>,
    transforms: String,
    output: String,
    errors: String,
    settings: String,
}

/// `text`'s non-blank lines, each after `indent` spaces.
fn indented(text: &str, indent: usize) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{:indent$}{l}\n", ""))
        .collect()
}

impl KafkaPipeline {
    /// A pipeline reading `topics` (a YAML list's items, `a, b`) of `brokers` in consumer group
    /// `group` and writing every event to topic `output` there, stopping at the first failure.
    pub fn new(brokers: &str, topics: &str, group: &str, output: &str) -> KafkaPipeline {
        KafkaPipeline {
            brokers: brokers.to_string(),
            name: None,
            input: format!("topics: [{topics}]\ngroup_id: {group}\n"),
            options: Vec::new(),
            transforms: String::new(),
            output: format!("topic: {output}\n"),
            errors: "stop".into(),
            settings: String::new(),
        }
    }

    /// Its `name:` (metrics and logs label the pipeline with it).
    pub fn name(mut self, name: &str) -> KafkaPipeline {
        self.name = Some(name.to_string());
        self
    }

    /// More lines of the Kafka input (`start_from: earliest`, `commit_interval: 1s`, `codec:`).
    pub fn input(mut self, lines: &str) -> KafkaPipeline {
        self.input += &indented(lines, 0);
        self
    }

    /// A librdkafka property of the input's `options`.
    pub fn option(mut self, key: &str, value: &str) -> KafkaPipeline {
        self.options.push((key.to_string(), value.to_string()));
        self
    }

    /// Steps of `transforms:`, as the list's items (`- jq: '.'`).
    pub fn transforms(mut self, steps: &str) -> KafkaPipeline {
        self.transforms += &indented(steps, 0);
        self
    }

    /// More lines of the Kafka output (`linger: 1ms`, `format:`).
    pub fn output(mut self, lines: &str) -> KafkaPipeline {
        self.output += &indented(lines, 0);
        self
    }

    /// More lines of both the input and the output (`tls:`, `sasl:`): what a secured broker
    /// asks of every client.
    pub fn both(self, lines: &str) -> KafkaPipeline {
        self.input(lines).output(lines)
    }

    /// `errors:` (`drop`, `stop`, or a block such as `output: ...`).
    pub fn errors(mut self, errors: &str) -> KafkaPipeline {
        self.errors = errors.to_string();
        self
    }

    /// Failed events dead-lettered to topic `dlq` on the same brokers.
    pub fn dead_letters(self, dlq: &str) -> KafkaPipeline {
        let brokers = self.brokers.clone();
        self.errors(&format!(
            "output:\n  kafka: {{brokers: {brokers}, topic: {dlq}}}"
        ))
    }

    /// Lines of `settings:` (`batch_size: 200`).
    pub fn settings(mut self, lines: &str) -> KafkaPipeline {
        self.settings += &indented(lines, 0);
        self
    }

    /// The pipeline file's text.
    pub fn yaml(&self) -> String {
        let brokers = &self.brokers;
        let mut y = String::new();
        if let Some(name) = &self.name {
            let _ = writeln!(y, "name: {name}");
        }
        let _ = writeln!(y, "input:\n  kafka:\n    brokers: {brokers}");
        y += &indented(&self.input, 4);
        if !self.options.is_empty() {
            y += "    options:\n";
            for (key, value) in &self.options {
                let _ = writeln!(y, "      {key}: \"{value}\"");
            }
        }
        if !self.transforms.is_empty() {
            y += "transforms:\n";
            y += &indented(&self.transforms, 2);
        }
        let _ = writeln!(y, "output:\n  kafka:\n    brokers: {brokers}");
        y += &indented(&self.output, 4);
        if self.errors.contains('\n') || self.errors.contains(": ") {
            y += "errors:\n";
            y += &indented(&self.errors, 2);
        } else {
            let _ = writeln!(y, "errors: {}", self.errors);
        }
        if !self.settings.is_empty() {
            y += "settings:\n";
            y += &indented(&self.settings, 2);
        }
        y
    }

    /// Writes the file `name.yaml` into `dir` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        crate::pipeline(dir, name, &self.yaml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_go_where_they_belong_indented_as_yaml_wants() {
        let yaml = KafkaPipeline::new("b:9092", "in", "g", "out")
            .name("p")
            .input("start_from: earliest\ncodec:\n  avro: {schema_file: s}")
            .option("session.timeout.ms", "6000")
            .transforms("- jq: '.'\n- route:\n    key: '$key'")
            .both("tls: {ca_file: ca.pem}")
            .output("linger: 1ms")
            .dead_letters("dlq")
            .settings("batch_size: 200")
            .yaml();
        assert_eq!(
            yaml,
            "\
name: p
input:
  kafka:
    brokers: b:9092
    topics: [in]
    group_id: g
    start_from: earliest
    codec:
      avro: {schema_file: s}
    tls: {ca_file: ca.pem}
    options:
      session.timeout.ms: \"6000\"
transforms:
  - jq: '.'
  - route:
      key: '$key'
output:
  kafka:
    brokers: b:9092
    topic: out
    tls: {ca_file: ca.pem}
    linger: 1ms
errors:
  output:
    kafka: {brokers: b:9092, topic: dlq}
settings:
  batch_size: 200
"
        );
    }

    #[test]
    fn a_word_for_errors_stays_on_its_line() {
        let yaml = KafkaPipeline::new("b", "a, b", "g", "o")
            .errors("drop")
            .yaml();
        assert!(yaml.contains("    topics: [a, b]\n"), "{yaml}");
        assert!(yaml.ends_with("errors: drop\n"), "{yaml}");
    }
}
