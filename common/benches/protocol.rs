//! Throughput of the per-byte work every client line goes through: framing and sanitising.
//! Run with `cargo bench -p chat-common`; criterion reports bytes/s.

use chat_common::{sanitize, Frame, LineFramer};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

/// Chat-like input: 64-byte lines, as the load tests send.
fn chat_lines(total: usize) -> Vec<u8> {
    let line = b"~M3:1234:1700000000000000000:abcde~xxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";
    line.iter().copied().cycle().take(total).collect()
}

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("framer");
    let inputs = [
        ("chat lines 64 B", chat_lines(64 * 1024)),
        ("one 4 KiB line per read", {
            let mut v = vec![b'x'; 4095];
            v.push(b'\n');
            v.repeat(16)
        }),
        ("over-long line (discarded)", vec![b'y'; 64 * 1024]),
        ("telnet commands mixed in", {
            let mut v = Vec::new();
            for _ in 0..1024 {
                v.extend_from_slice(b"hello\xff\xfb\x01 world\xff\xf4\r\0");
            }
            v
        }),
    ];
    for (name, input) in &inputs {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            let mut frames: Vec<Frame> = Vec::with_capacity(2048);
            b.iter(|| {
                let mut framer = LineFramer::new(4096);
                // Fed in 1 KiB reads, like the server's read buffer.
                for chunk in input.chunks(1024) {
                    framer.feed(black_box(chunk), &mut frames);
                }
                frames.clear();
            });
        });
    }
    group.finish();
}

fn sanitizing(c: &mut Criterion) {
    let mut group = c.benchmark_group("sanitize");
    let clean = "hello everyone, 민수 here: the build is green again ".repeat(20);
    let dirty =
        "\u{1b}[31mred\u{1b}[0m text \u{1b}]0;title\u{7} and \u{8}\u{8} bells\u{7} ".repeat(20);
    for (name, text) in [("clean text", &clean), ("escape sequences", &dirty)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), text, |b, text| {
            b.iter(|| sanitize(black_box(text)));
        });
    }
    group.finish();
}

criterion_group!(benches, framing, sanitizing);
criterion_main!(benches);
