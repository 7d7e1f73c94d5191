//! The labelled evaluation corpus, generated reproducibly from a seed: μ-law 8 kHz clips as a
//! carrier sends them, and the ground-truth speech segments of each.
//!
//! - Speech: `espeak-ng` at several voices, speeds and levels (soft and very soft included),
//!   caller turns separated by the agent's turn, some of them paused mid-sentence after a
//!   trailing "and…" and then continued.
//! - Non-speech: coughs, clicks and knocks, steady white/pink/brown noise, background babble,
//!   music-like tones, line noise (see [`super::sounds`]).
//! - Mixtures: speech over noise, babble, music and line noise at several SNRs, and speech
//!   among coughs.
//!
//! Everything goes through a telephone band-pass (`sox`, 250–3500 Hz) and a quiet line floor,
//! then μ-law. Needs the Debian packages `espeak-ng` and `sox`; the audio is written to a
//! folder of the caller's choice (never into git), `labels.json` beside it.
//!
//! Ground truth comes from the clean utterance before mixing: a segment runs from the first to
//! the last 5 ms window within 40 dB of the utterance's loudest one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fastrand::Rng;
use serde::{Deserialize, Serialize};

use super::sounds::{self, RATE};
use crate::codec::{mulaw_decode, mulaw_encode};

/// Bumped whenever generation changes, so a cached corpus is regenerated.
pub const GENERATOR_VERSION: u32 = 1;
/// Manifest file in the corpus folder.
pub const LABELS_FILE: &str = "labels.json";

/// `espeak-ng` voices (language + variant) of the callers.
const VOICES: [&str; 5] = [
    "en-us",
    "en-us+f3",
    "en-gb+m3",
    "en-gb-scotland+f4",
    "en-029+m7",
];
/// Speaking rates in words per minute.
const SPEEDS: [u32; 3] = [130, 175, 230];
/// Speech levels (active speech RMS, dBFS).
const LEVEL_LOUD: f32 = -14.0;
const LEVEL_NORMAL: f32 = -24.0;
const LEVEL_SOFT: f32 = -38.0;
const LEVEL_VERY_SOFT: f32 = -46.0;
/// Quiet line floor under everything (pink noise RMS, dBFS).
const LINE_FLOOR: f32 = -66.0;
/// Mixture SNRs (dB, active speech RMS over noise RMS).
const SNRS: [f32; 4] = [20.0, 10.0, 5.0, 0.0];

/// Caller turns: one or two parts; a two-part turn pauses after the first part (which ends
/// with "and", "um", "could" …) and goes on.
const TURNS: &[&[&str]] = &[
    &["What are your opening hours on Saturday?"],
    &["Yes, that's right."],
    &["No thanks."],
    &["Stop."],
    &["Can I speak to someone about my bill?"],
    &["I'd like to change my delivery address."],
    &["My account number is four five seven two nine."],
    &["Sure."],
    &["Hold on, wait a second."],
    &["That sounds good to me."],
    &["Is there a cheaper option?"],
    &["Could you repeat that, please?"],
    &["Actually, cancel the order."],
    &["Wait."],
    &[
        "I would like to book a table for tonight and",
        "maybe also for tomorrow evening.",
    ],
    &[
        "My name is John Miller and",
        "I'm calling about the invoice.",
    ],
    &["I was wondering if you could", "send me the form by email."],
    &["Well, um", "I'm not really sure about that."],
    &[
        "The heating broke down and",
        "the hot water stopped working too.",
    ],
];

/// Sentences the background talkers of the babble say.
const BABBLE: &[&str] = &[
    "Did you see the game last night, it was unbelievable.",
    "I think we should leave before the traffic gets bad.",
    "Two coffees and a piece of the chocolate cake, please.",
    "She said the meeting was moved to Thursday afternoon.",
    "Honestly I have no idea where I put my keys this morning.",
    "The new place on the corner does a great lunch menu.",
    "We went to the coast for the weekend and it rained the whole time.",
    "Can you pass me the salt and the pepper?",
];

/// How much corpus to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorpusSize {
    /// Every voice, speed, level and mixture (about 20 minutes of audio).
    Full,
    /// A few clips of each kind, for tests.
    Quick,
}

/// What a clip is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipKind {
    /// Caller speech on a quiet line.
    Speech,
    /// No speech at all.
    NonSpeech,
    /// Caller speech over noise.
    Mixture,
}

/// One stretch of caller speech.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// First sample of speech, ms from the clip's start.
    pub start_ms: u32,
    /// Last sample of speech, ms from the clip's start.
    pub end_ms: u32,
    /// The words.
    pub text: String,
    /// Index of the caller turn within the clip.
    pub turn: u32,
    /// True when the caller's turn ends with this segment (false: a pause, then more).
    pub ends_turn: bool,
}

/// Labels of one clip; its audio is `<name>.ul` (raw μ-law, 8 kHz, mono).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// File stem.
    pub name: String,
    /// Speech, non-speech or mixture.
    pub kind: ClipKind,
    /// What is in it.
    pub description: String,
    /// Length.
    pub duration_ms: u32,
    /// Active speech level (dBFS) when there is speech.
    pub speech_dbfs: Option<f32>,
    /// Speech at or below the soft level.
    pub soft: bool,
    /// Signal-to-noise ratio of a mixture (dB).
    pub snr_db: Option<f32>,
    /// Ground-truth speech, in order.
    pub segments: Vec<Segment>,
}

/// `labels.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Generator version.
    pub version: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Size generated.
    pub size: CorpusSize,
    /// `espeak-ng --version` of the machine that made it.
    pub espeak: String,
    /// The clips.
    pub clips: Vec<Clip>,
}

/// Why the corpus could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A required program is missing.
    #[error("`{0}` is not installed (Debian: apt-get install -y espeak-ng sox)")]
    MissingTool(&'static str),
    /// A program failed.
    #[error("`{program}` failed: {message}")]
    Tool {
        /// The program.
        program: &'static str,
        /// Its complaint.
        message: String,
    },
    /// Reading or writing the corpus folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `labels.json` is not what this generator writes.
    #[error("{path}: {source}")]
    Labels {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A generated corpus on disk.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Its folder.
    pub dir: PathBuf,
    /// Its labels.
    pub manifest: Manifest,
}

impl Corpus {
    /// Reuses the corpus in `dir` if it was made by this generator with `seed` and `size`,
    /// otherwise generates it there.
    pub fn load_or_generate(dir: &Path, seed: u64, size: CorpusSize) -> Result<Self, CorpusError> {
        if let Ok(corpus) = Self::load(dir)
            && corpus.manifest.version == GENERATOR_VERSION
            && corpus.manifest.seed == seed
            && corpus.manifest.size == size
            && corpus.manifest.espeak == espeak_version()?
        {
            return Ok(corpus);
        }
        Self::generate(dir, seed, size)
    }

    /// Reads the corpus in `dir`.
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let path = dir.join(LABELS_FILE);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let manifest = serde_json::from_str(&text).map_err(|source| CorpusError::Labels {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            manifest,
        })
    }

    /// The μ-law bytes of `clip`.
    pub fn audio(&self, clip: &Clip) -> Result<Vec<u8>, CorpusError> {
        let path = self.dir.join(format!("{}.ul", clip.name));
        std::fs::read(&path).map_err(io(&path))
    }

    /// Generates the corpus into `dir` (created if needed; existing clips are overwritten).
    pub fn generate(dir: &Path, seed: u64, size: CorpusSize) -> Result<Self, CorpusError> {
        let espeak = espeak_version()?;
        sox_version()?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut generator = Generator {
            rng: Rng::with_seed(seed),
            scratch: tempfile::tempdir().map_err(io(dir))?,
            clips: Vec::new(),
            dir: dir.to_owned(),
        };
        generator.speech_clips(size)?;
        generator.non_speech_clips(size)?;
        generator.mixtures(size)?;
        let manifest = Manifest {
            version: GENERATOR_VERSION,
            seed,
            size,
            espeak,
            clips: generator.clips,
        };
        let path = dir.join(LABELS_FILE);
        let json =
            serde_json::to_string_pretty(&manifest).map_err(|source| CorpusError::Labels {
                path: path.clone(),
                source,
            })?;
        std::fs::write(&path, json).map_err(io(&path))?;
        Ok(Self {
            dir: dir.to_owned(),
            manifest,
        })
    }
}

/// `text` spoken by an `espeak-ng` `voice` at `speed` wpm through the telephone band, its
/// speech at `dbfs` (active RMS), as 8 kHz samples: for tests that need a real word.
pub fn spoken(voice: &str, speed: u32, text: &str, dbfs: f32) -> Result<Vec<i16>, CorpusError> {
    espeak_version()?;
    let mut generator = Generator {
        rng: Rng::with_seed(0),
        scratch: tempfile::tempdir().map_err(io(Path::new("tempdir")))?,
        clips: Vec::new(),
        dir: PathBuf::new(),
    };
    let utterance = generator.speak(voice, speed, text)?;
    let gain = 10f32.powf(dbfs / 20.0) * 32768.0;
    Ok(utterance
        .samples
        .iter()
        .map(|s| (s * gain).clamp(-32767.0, 32767.0) as i16)
        .collect())
}

/// Decodes μ-law bytes to samples.
pub fn decode(ulaw: &[u8]) -> Vec<i16> {
    ulaw.iter().map(|b| mulaw_decode(*b)).collect()
}

fn espeak_version() -> Result<String, CorpusError> {
    let output = run("espeak-ng", &["--version"], None)?;
    Ok(String::from_utf8_lossy(&output)
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" "))
}

fn sox_version() -> Result<(), CorpusError> {
    run("sox", &["--version"], None).map(|_| ())
}

/// Runs `program` with `args` (stdin from `input`), returning its stdout.
fn run(program: &'static str, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, CorpusError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => CorpusError::MissingTool(program),
            _ => CorpusError::Tool {
                program,
                message: error.to_string(),
            },
        })?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // Written from a thread: sox streams, so its stdout must be read meanwhile.
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let output = child.wait_with_output().map_err(|e| CorpusError::Tool {
        program,
        message: e.to_string(),
    })?;
    if !output.status.success() {
        return Err(CorpusError::Tool {
            program,
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

fn f32_bytes(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn bytes_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The telephone channel: 250–3500 Hz band-pass (sox, deterministic with `-R`).
fn telephone_band(samples: &[f32]) -> Result<Vec<f32>, CorpusError> {
    let out = run(
        "sox",
        &[
            "-R", "-D", "-t", "f32", "-r", "8000", "-c", "1", "-", "-t", "f32", "-", "sinc",
            "250-3500",
        ],
        Some(&f32_bytes(samples)),
    )?;
    Ok(bytes_f32(&out))
}

/// A caller utterance: band-limited speech and its speech span (samples).
struct Utterance {
    samples: Vec<f32>,
    start: usize,
    end: usize,
}

struct Generator {
    rng: Rng,
    scratch: tempfile::TempDir,
    clips: Vec<Clip>,
    dir: PathBuf,
}

impl Generator {
    /// `text` spoken by `voice` at `speed` wpm, 8 kHz, telephone band, speech RMS = 1.
    fn speak(&mut self, voice: &str, speed: u32, text: &str) -> Result<Utterance, CorpusError> {
        let wav = self.scratch.path().join("utterance.wav");
        let wav_arg = wav.to_string_lossy().into_owned();
        let pitch = (35 + self.rng.u32(0..30)).to_string();
        let speed = speed.to_string();
        run(
            "espeak-ng",
            &[
                "-v", voice, "-s", &speed, "-p", &pitch, "-w", &wav_arg, text,
            ],
            None,
        )?;
        let raw = run(
            "sox",
            &[
                "-R", "-D", &wav_arg, "-t", "f32", "-c", "1", "-", "rate", "8000", "sinc",
                "250-3500",
            ],
            None,
        )?;
        let mut samples = bytes_f32(&raw);
        let (start, end) = speech_span(&samples);
        let level = sounds::rms(&samples[start..end]);
        if level > 0.0 {
            samples.iter_mut().for_each(|s| *s /= level);
        }
        Ok(Utterance {
            samples,
            start,
            end,
        })
    }

    /// Background line floor for `samples` samples.
    fn floor(&mut self, samples: usize) -> Vec<f32> {
        let mut floor = sounds::pink(&mut self.rng, samples);
        sounds::set_rms(&mut floor, LINE_FLOOR);
        floor
    }

    /// A clip of caller turns over `background` (already at its level, or the line floor).
    /// Returns the mixed clip and its segments, speech at `level` dBFS.
    fn conversation(
        &mut self,
        voice: &str,
        speed: u32,
        level: f32,
        turns: usize,
    ) -> Result<(Vec<f32>, Vec<Segment>), CorpusError> {
        let mut speech = Vec::new();
        let mut segments = Vec::new();
        let lead_in = (RATE * (0.8 + 0.8 * self.rng.f32())) as usize;
        speech.resize(lead_in, 0.0);
        // One paused two-part turn and one short word in every clip, the rest at random.
        let mut chosen: Vec<usize> = vec![
            14 + self.rng.usize(0..5),
            [1, 2, 3, 7, 13][self.rng.usize(0..5)],
        ];
        while chosen.len() < turns {
            chosen.push(self.rng.usize(0..TURNS.len()));
        }
        self.rng.shuffle(&mut chosen);
        for (turn, index) in chosen.into_iter().enumerate() {
            let parts = TURNS[index];
            for (part, text) in parts.iter().enumerate() {
                let utterance = self.speak(voice, speed, text)?;
                let gain = 10f32.powf((level + self.rng.f32() * 3.0 - 1.5) / 20.0);
                let at = speech.len();
                speech.extend(utterance.samples.iter().map(|s| s * gain));
                let ends_turn = part + 1 == parts.len();
                segments.push(Segment {
                    start_ms: ms(at + utterance.start),
                    end_ms: ms(at + utterance.end),
                    text: (*text).to_owned(),
                    turn: turn as u32,
                    ends_turn,
                });
                // Mid-turn pause (0.5–1.4 s) or the agent's turn (2–3.5 s).
                let gap = if ends_turn {
                    2.0 + 1.5 * self.rng.f32()
                } else {
                    0.5 + 0.9 * self.rng.f32()
                };
                let silence = (RATE * gap) as usize;
                speech.extend(std::iter::repeat_n(0.0, silence));
            }
        }
        Ok((speech, segments))
    }

    fn write(&mut self, mut clip: Clip, mut audio: Vec<f32>) -> Result<(), CorpusError> {
        let floor = self.floor(audio.len());
        audio.iter_mut().zip(floor).for_each(|(s, f)| *s += f);
        let ulaw: Vec<u8> = audio
            .iter()
            .map(|s| mulaw_encode((s * 32768.0).clamp(-32767.0, 32767.0) as i16))
            .collect();
        clip.duration_ms = ms(audio.len());
        let path = self.dir.join(format!("{}.ul", clip.name));
        std::fs::write(&path, ulaw).map_err(io(&path))?;
        self.clips.push(clip);
        Ok(())
    }

    fn speech_clips(&mut self, size: CorpusSize) -> Result<(), CorpusError> {
        let (voices, speeds): (&[&str], &[u32]) = match size {
            CorpusSize::Full => (&VOICES, &SPEEDS),
            CorpusSize::Quick => (&VOICES[..2], &SPEEDS[1..2]),
        };
        let mut plan = Vec::new();
        for voice in voices {
            for speed in speeds {
                plan.push((*voice, *speed, LEVEL_NORMAL));
                plan.push((*voice, *speed, LEVEL_SOFT));
            }
            plan.push((*voice, 175, LEVEL_VERY_SOFT));
            plan.push((*voice, 175, LEVEL_LOUD));
        }
        for (voice, speed, level) in plan {
            let (audio, segments) = self.conversation(voice, speed, level, 4)?;
            let name = format!(
                "speech-{}-{speed}wpm-{}db",
                voice.replace('+', "_"),
                level.abs()
            );
            let clip = Clip {
                name,
                kind: ClipKind::Speech,
                description: format!("{voice} at {speed} wpm, speech at {level} dBFS"),
                duration_ms: 0,
                speech_dbfs: Some(level),
                soft: level <= LEVEL_SOFT,
                snr_db: None,
                segments,
            };
            self.write(clip, audio)?;
        }
        Ok(())
    }

    /// `seconds` of background talkers at `dbfs`, band-limited.
    fn babble(&mut self, seconds: f32, dbfs: f32) -> Result<Vec<f32>, CorpusError> {
        let samples = (RATE * seconds) as usize;
        let mut mix = vec![0.0f32; samples];
        for talker in 0..6 {
            let voice = VOICES[talker % VOICES.len()];
            let speed = SPEEDS[self.rng.usize(0..SPEEDS.len())];
            let mut text = String::new();
            while text.len() < (seconds * 18.0) as usize {
                text.push_str(BABBLE[self.rng.usize(0..BABBLE.len())]);
                text.push(' ');
            }
            let utterance = self.speak(voice, speed, &text)?;
            let gain = 10f32.powf((self.rng.f32() * 6.0 - 3.0) / 20.0);
            let offset = self.rng.usize(0..utterance.samples.len().max(1));
            // Start each talker somewhere in their speech and wrap around.
            for (n, s) in mix.iter_mut().enumerate() {
                let k = (offset + n) % utterance.samples.len().max(1);
                *s += gain * utterance.samples.get(k).copied().unwrap_or(0.0);
            }
        }
        sounds::set_rms(&mut mix, dbfs);
        Ok(mix)
    }

    /// A non-speech sound of `kind` lasting `seconds`, at its natural level.
    fn noise(&mut self, kind: NoiseKind, seconds: f32) -> Result<Vec<f32>, CorpusError> {
        let samples = (RATE * seconds) as usize;
        let rng = &mut self.rng;
        let noise = match kind {
            NoiseKind::White(dbfs) => leveled(sounds::white(rng, samples), dbfs),
            NoiseKind::Pink(dbfs) => leveled(sounds::pink(rng, samples), dbfs),
            NoiseKind::Brown(dbfs) => leveled(sounds::brown(rng, samples), dbfs),
            NoiseKind::Babble(dbfs) => return self.babble(seconds, dbfs),
            NoiseKind::Music { dbfs, drums } => leveled(sounds::music(rng, seconds, drums), dbfs),
            NoiseKind::Line(mains) => sounds::line_noise(rng, seconds, mains),
            NoiseKind::Coughs => {
                let mut out = vec![0.0; samples];
                let mut at = RATE * (0.5 + rng.f32());
                while (at as usize) < samples {
                    let peak = 10f32.powf((-14.0 + 10.0 * rng.f32()) / 20.0);
                    let cough = sounds::cough(rng, peak);
                    sounds::mix_at(&mut out, &cough, at as usize);
                    at += RATE * (1.5 + 2.5 * rng.f32());
                }
                out
            }
            NoiseKind::Clicks => {
                let mut out = vec![0.0; samples];
                let mut at = RATE * 0.5;
                while (at as usize) < samples {
                    let peak = 10f32.powf((-16.0 + 12.0 * rng.f32()) / 20.0);
                    let sound = match rng.usize(0..3) {
                        0 => sounds::click(rng, peak),
                        1 => {
                            let count = 3 + rng.usize(0..10);
                            sounds::typing(rng, count, peak)
                        }
                        _ => {
                            let mut knocks = Vec::new();
                            for _ in 0..3 {
                                knocks.extend(sounds::knock(rng, peak));
                                knocks.extend(std::iter::repeat_n(0.0, 1600));
                            }
                            knocks
                        }
                    };
                    sounds::mix_at(&mut out, &sound, at as usize);
                    at += RATE * (0.8 + 2.0 * rng.f32());
                }
                out
            }
        };
        telephone_band(&noise)
    }

    fn non_speech_clips(&mut self, size: CorpusSize) -> Result<(), CorpusError> {
        let kinds: Vec<NoiseKind> = match size {
            CorpusSize::Full => vec![
                NoiseKind::Coughs,
                NoiseKind::Coughs,
                NoiseKind::Clicks,
                NoiseKind::White(-42.0),
                NoiseKind::Pink(-36.0),
                NoiseKind::Brown(-30.0),
                NoiseKind::Babble(-34.0),
                NoiseKind::Babble(-42.0),
                NoiseKind::Music {
                    dbfs: -26.0,
                    drums: false,
                },
                NoiseKind::Music {
                    dbfs: -24.0,
                    drums: true,
                },
                NoiseKind::Line(50.0),
                NoiseKind::Line(60.0),
            ],
            CorpusSize::Quick => vec![
                NoiseKind::Coughs,
                NoiseKind::Clicks,
                NoiseKind::Pink(-36.0),
                NoiseKind::Music {
                    dbfs: -26.0,
                    drums: false,
                },
                NoiseKind::Line(60.0),
            ],
        };
        for (index, kind) in kinds.into_iter().enumerate() {
            let seconds = 20.0;
            let audio = self.noise(kind, seconds)?;
            let clip = Clip {
                name: format!("nonspeech-{index:02}-{}", kind.name()),
                kind: ClipKind::NonSpeech,
                description: kind.describe(),
                duration_ms: 0,
                speech_dbfs: None,
                soft: false,
                snr_db: None,
                segments: Vec::new(),
            };
            self.write(clip, audio)?;
        }
        Ok(())
    }

    fn mixtures(&mut self, size: CorpusSize) -> Result<(), CorpusError> {
        let (kinds, snrs): (Vec<NoiseKind>, &[f32]) = match size {
            CorpusSize::Full => (
                vec![
                    NoiseKind::Pink(0.0),
                    NoiseKind::Babble(0.0),
                    NoiseKind::Music {
                        dbfs: 0.0,
                        drums: true,
                    },
                    NoiseKind::Line(60.0),
                ],
                &SNRS,
            ),
            CorpusSize::Quick => (vec![NoiseKind::Babble(0.0)], &SNRS[1..2]),
        };
        let mut voice_index = 0;
        for kind in kinds {
            for snr in snrs {
                let voice = VOICES[voice_index % VOICES.len()];
                voice_index += 1;
                let (speech, segments) = self.conversation(voice, 175, LEVEL_NORMAL, 3)?;
                let mut noise = self.noise(kind, speech.len() as f32 / RATE)?;
                sounds::set_rms(&mut noise, LEVEL_NORMAL - snr);
                let audio = speech.iter().zip(noise).map(|(s, n)| s + n).collect();
                let clip = Clip {
                    name: format!("mix-{}-{snr}db-{}", kind.name(), voice.replace('+', "_")),
                    kind: ClipKind::Mixture,
                    description: format!("{voice} over {} at {snr} dB SNR", kind.name()),
                    duration_ms: 0,
                    speech_dbfs: Some(LEVEL_NORMAL),
                    soft: false,
                    snr_db: Some(*snr),
                    segments,
                };
                self.write(clip, audio)?;
            }
        }
        // Speech among coughs (no SNR: the coughs keep their own loudness).
        let cough_clips = if size == CorpusSize::Full { 2 } else { 1 };
        for index in 0..cough_clips {
            let voice = VOICES[(voice_index + index) % VOICES.len()];
            let (speech, segments) = self.conversation(voice, 175, LEVEL_NORMAL, 3)?;
            let coughs = self.noise(NoiseKind::Coughs, speech.len() as f32 / RATE)?;
            let audio = speech.iter().zip(coughs).map(|(s, n)| s + n).collect();
            let clip = Clip {
                name: format!("mix-coughs-{index}-{}", voice.replace('+', "_")),
                kind: ClipKind::Mixture,
                description: format!("{voice} with coughs around and over the speech"),
                duration_ms: 0,
                speech_dbfs: Some(LEVEL_NORMAL),
                soft: false,
                snr_db: None,
                segments,
            };
            self.write(clip, audio)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum NoiseKind {
    Coughs,
    Clicks,
    White(f32),
    Pink(f32),
    Brown(f32),
    Babble(f32),
    Music { dbfs: f32, drums: bool },
    Line(f32),
}

impl NoiseKind {
    fn name(self) -> &'static str {
        match self {
            NoiseKind::Coughs => "coughs",
            NoiseKind::Clicks => "clicks",
            NoiseKind::White(_) => "white-noise",
            NoiseKind::Pink(_) => "pink-noise",
            NoiseKind::Brown(_) => "brown-noise",
            NoiseKind::Babble(_) => "babble",
            NoiseKind::Music { drums: false, .. } => "music",
            NoiseKind::Music { drums: true, .. } => "music-drums",
            NoiseKind::Line(_) => "line-noise",
        }
    }

    fn describe(self) -> String {
        match self {
            NoiseKind::Coughs => "single and double coughs, -14 to -4 dBFS peak".into(),
            NoiseKind::Clicks => "clicks, typing and knocks".into(),
            NoiseKind::White(db) | NoiseKind::Pink(db) | NoiseKind::Brown(db) => {
                format!("steady {} at {db} dBFS", self.name())
            }
            NoiseKind::Babble(db) => format!("six background talkers at {db} dBFS"),
            NoiseKind::Music { dbfs, .. } => format!("{} at {dbfs} dBFS", self.name()),
            NoiseKind::Line(mains) => {
                format!("{mains} Hz buzz, hiss, crackle, static bursts and dropouts")
            }
        }
    }
}

fn leveled(mut samples: Vec<f32>, dbfs: f32) -> Vec<f32> {
    sounds::set_rms(&mut samples, dbfs);
    samples
}

fn ms(samples: usize) -> u32 {
    (samples as u64 * 1000 / RATE as u64) as u32
}

/// First and last sample of the 5 ms windows within 40 dB of the loudest one.
fn speech_span(samples: &[f32]) -> (usize, usize) {
    const WINDOW: usize = 40;
    let levels: Vec<f32> = samples
        .chunks(WINDOW)
        .map(|w| 20.0 * sounds::rms(w).max(1e-9).log10())
        .collect();
    let loudest = levels.iter().copied().fold(f32::MIN, f32::max);
    let threshold = loudest - 40.0;
    let first = levels.iter().position(|l| *l > threshold).unwrap_or(0);
    let last = levels.iter().rposition(|l| *l > threshold).unwrap_or(0);
    (first * WINDOW, ((last + 1) * WINDOW).min(samples.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_span_finds_the_loud_part() {
        let mut samples = vec![0.0001f32; 800];
        samples.extend(vec![0.5f32; 400]);
        samples.extend(vec![0.0001f32; 800]);
        assert_eq!(speech_span(&samples), (800, 1200));
    }
}
