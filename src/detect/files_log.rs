//! The extracted files a job's `files.log` lists, whichever backend wrote it: Zeek's TSV
//! (with its `#fields` header) or JSON lines (`id.orig_h`-style keys), as the builtin
//! analyzer and Zeek both write them.

use std::io::BufRead;
use std::net::IpAddr;
use std::path::Path;

/// A row's field by column name, unset fields as `None`.
type Field = Box<dyn Fn(&str) -> Option<String>>;

/// One extracted file, as files.log describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractedFile {
    pub ts: f64,
    pub fuid: String,
    pub uid: String,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    pub mime_type: Option<String>,
    /// Path under `extract_files/`, checked to stay inside it.
    pub extracted: String,
}

/// Why files.log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesLogError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {problem}")]
    Bad {
        path: String,
        line: usize,
        problem: String,
    },
}

/// The rows of `path` whose `extracted` is set; none when the file does not exist.
pub fn extracted_files(path: &Path) -> Result<Vec<ExtractedFile>, FilesLogError> {
    let shown = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(FilesLogError::Io {
                path: shown,
                source,
            })
        }
    };
    let mut fields: Option<Vec<String>> = None;
    let mut unset = "-".to_string();
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| FilesLogError::Io {
            path: shown.clone(),
            source,
        })?;
        let bad = |problem: String| FilesLogError::Bad {
            path: shown.clone(),
            line: i + 1,
            problem,
        };
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('#') {
            if let Some(names) = header.strip_prefix("fields\t") {
                fields = Some(names.split('\t').map(str::to_string).collect());
            } else if let Some(u) = header.strip_prefix("unset_field\t") {
                unset = u.to_string();
            }
            continue;
        }
        let get: Field = if line.starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            Box::new(move |k: &str| match value.get(k)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
        } else {
            let names = fields
                .as_ref()
                .ok_or_else(|| bad("a row before the #fields header".into()))?;
            let values: Vec<String> = line.split('\t').map(str::to_string).collect();
            let names = names.clone();
            let unset = unset.clone();
            Box::new(move |k: &str| {
                let at = names.iter().position(|n| n == k)?;
                values.get(at).filter(|v| **v != unset).cloned()
            })
        };
        let Some(extracted) = get("extracted") else {
            continue;
        };
        if !safe_relative(&extracted) {
            return Err(bad(format!(
                "extracted name {extracted:?} leaves extract_files/"
            )));
        }
        let need = |k: &str| get(k).ok_or_else(|| bad(format!("no {k}")));
        let num = |k: &str| -> Result<f64, FilesLogError> {
            need(k)?.parse().map_err(|_| bad(format!("bad {k}")))
        };
        let addr = |k: &str| -> Result<IpAddr, FilesLogError> {
            need(k)?.parse().map_err(|_| bad(format!("bad {k}")))
        };
        out.push(ExtractedFile {
            ts: num("ts")?,
            fuid: need("fuid")?,
            uid: get("uid").unwrap_or_default(),
            orig_h: addr("id.orig_h")?,
            orig_p: num("id.orig_p")? as u16,
            resp_h: addr("id.resp_h")?,
            resp_p: num("id.resp_p")? as u16,
            mime_type: get("mime_type"),
            extracted,
        });
    }
    Ok(out)
}

/// A relative path of normal components only (no `..`, no root, not empty).
fn safe_relative(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_and_json_rows_with_extracted_are_read() {
        let dir = std::env::temp_dir().join(format!("pcapd-fileslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tsv = dir.join("files.log");
        std::fs::write(
            &tsv,
            "#separator \\x09\n#unset_field\t-\n#fields\tts\tfuid\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tmime_type\textracted\n\
             1.5\tFa\tCa\t10.0.0.1\t4000\t10.0.0.2\t80\ttext/plain\textract-1.5-HTTP-Fa\n\
             1.6\tFb\tCb\t10.0.0.1\t4000\t10.0.0.2\t80\t-\t-\n#close\tx\n",
        )
        .unwrap();
        let rows = extracted_files(&tsv).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].extracted, "extract-1.5-HTTP-Fa");
        assert_eq!(rows[0].mime_type.as_deref(), Some("text/plain"));
        std::fs::write(
            &tsv,
            "{\"ts\":2.0,\"fuid\":\"Fc\",\"uid\":\"Cc\",\"id.orig_h\":\"::1\",\"id.orig_p\":1,\"id.resp_h\":\"::2\",\"id.resp_p\":80,\"extracted\":\"application/pdf/x\"}\n",
        )
        .unwrap();
        let rows = extracted_files(&tsv).unwrap();
        assert_eq!(rows[0].resp_p, 80);
        assert_eq!(rows[0].mime_type, None);
        std::fs::write(
            &tsv,
            "{\"ts\":2.0,\"fuid\":\"Fc\",\"id.orig_h\":\"::1\",\"id.orig_p\":1,\"id.resp_h\":\"::2\",\"id.resp_p\":80,\"extracted\":\"../x\"}\n",
        )
        .unwrap();
        assert!(extracted_files(&tsv).is_err());
        assert!(extracted_files(&dir.join("none.log")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
