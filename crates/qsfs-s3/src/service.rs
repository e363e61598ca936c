//! The S3 operations the gateway answers, each as the caller's account: buckets, objects,
//! listings, multipart uploads. What is not here (ACLs, versioning, tagging, policies,
//! lifecycle...) gets s3s's `NotImplemented`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};

use crate::listing::{self, url_encode, Query};
use crate::meta::{Given, ObjectMeta};
use crate::multipart::{self, Which};
use crate::names::valid_bucket;
use crate::objects::{self, Upload};
use crate::{io_error, on_root, Gateway};

fn ok<T>(output: T) -> S3Result<S3Response<T>> {
    Ok(S3Response::new(output))
}

fn etag(value: String) -> Option<ETag> {
    Some(ETag::Strong(value))
}

fn time(t: SystemTime) -> Option<Timestamp> {
    Some(Timestamp::from(t))
}

/// What a client gives with an object: type, standard headers, `x-amz-meta-*`.
fn given(
    content_type: Option<String>,
    standard: [(&str, Option<String>); 4],
    user: Option<Metadata>,
) -> Given {
    Given {
        content_type,
        headers: standard
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
        user: user
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
    }
}

/// [`given`] from an input that carries an object's metadata (PutObject, CopyObject,
/// CreateMultipartUpload: separate types with the same fields).
macro_rules! given_of {
    ($i:expr) => {
        given(
            $i.content_type,
            [
                ("cache-control", $i.cache_control),
                ("content-disposition", $i.content_disposition),
                ("content-encoding", $i.content_encoding),
                ("content-language", $i.content_language),
            ],
            $i.metadata,
        )
    };
}

/// A GetObject or HeadObject answer (separate types with the same fields): `fields`, and
/// what object `o` (from [`objects::open`]) and its description `d` say.
macro_rules! described {
    ($out:ident { $($field:ident: $value:expr),* $(,)? }, $o:expr, $d:expr) => {{
        let h = |k: &str| $d.headers.get(k).cloned();
        $out {
            $($field: $value,)*
            accept_ranges: Some("bytes".into()),
            content_type: Some($d.content_type.clone()),
            cache_control: h("cache-control"),
            content_disposition: h("content-disposition"),
            content_encoding: h("content-encoding"),
            content_language: h("content-language"),
            e_tag: etag($o.etag),
            last_modified: time($o.modified),
            metadata: $d.user,
            ..$out::default()
        }
    }};
}

/// What GET and HEAD say of an object beside its bytes.
struct Described {
    content_type: String,
    headers: BTreeMap<String, String>,
    user: Option<Metadata>,
}

fn describe(key: &str, meta: Option<&ObjectMeta>) -> Described {
    let fallback = || qsfs_web::transfer::content_type(key).to_string();
    match meta {
        Some(m) => Described {
            content_type: m.content_type.clone().unwrap_or_else(fallback),
            headers: m.headers.clone(),
            user: (!m.user.is_empty()).then(|| m.user.clone().into_iter().collect()),
        },
        None => Described {
            content_type: fallback(),
            headers: BTreeMap::new(),
            user: None,
        },
    }
}

/// The marker of a listing page: the last key or prefix given, opaque to the client.
fn token_of(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

fn after_token(token: &str) -> S3Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "not a continuation token of this server"))
}

fn max_keys(max: Option<i32>) -> usize {
    max.map_or(listing::MAX_KEYS, |m| {
        usize::try_from(m).unwrap_or(0).min(listing::MAX_KEYS)
    })
}

/// A listing page as S3 objects and prefixes, keys encoded if asked.
fn page_entries(page: &listing::Page, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
    let objects = page
        .objects
        .iter()
        .map(|i| Object {
            key: Some(enc(&i.key)),
            size: Some(i64::try_from(i.size).unwrap_or(i64::MAX)),
            last_modified: time(i.modified),
            e_tag: etag(i.etag.clone()),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Object::default()
        })
        .collect();
    let prefixes = page
        .prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    (objects, prefixes)
}

fn wants_url(e: &Option<EncodingType>) -> bool {
    e.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL)
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let me = self.caller(&req).await?;
        let buckets = on_root(&me, |root| {
            let mut out = Vec::new();
            for e in root.entries().map_err(|e| io_error("/", &e))? {
                let Ok(e) = e else { continue };
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if !valid_bucket(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let created = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t.into_std())
                    .ok();
                out.push(Bucket {
                    name: Some(name),
                    creation_date: created.and_then(time),
                    ..Bucket::default()
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await?;
        ok(ListBucketsOutput {
            buckets: Some(buckets),
            ..ListBucketsOutput::default()
        })
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let me = self.caller(&req).await?;
        let bucket = req.input.bucket.clone();
        let path = crate::names::bucket_path(&bucket)?;
        on_root(&me, move |root| match root.create_dir(path.as_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "{bucket:?} exists already"
            )),
            Err(e) => Err(io_error(&bucket, &e)),
        })
        .await?;
        ok(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        })
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket_exists(&req, req.input.bucket.clone()).await?;
        ok(HeadBucketOutput::default())
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.bucket_exists(&req, req.input.bucket.clone()).await?;
        ok(GetBucketLocationOutput::default())
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let me = self.caller(&req).await?;
        let bucket = req.input.bucket.clone();
        on_root(&me, move |root| {
            let path = objects::need_bucket(root, &bucket)?;
            match root.remove_dir(path.as_path()) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Err(s3_error!(
                    BucketNotEmpty,
                    "{bucket:?} holds objects (or uploads in progress)"
                )),
                Err(e) => Err(io_error(&bucket, &e)),
            }
        })
        .await?;
        ok(DeleteBucketOutput::default())
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let up = Upload {
            body: i.body,
            length: i.content_length.and_then(|n| u64::try_from(n).ok()),
            content_md5: i.content_md5,
            given: given_of!(i),
        };
        let tag = objects::put(&self.st, &me, &i.bucket, &i.key, up).await?;
        ok(PutObjectOutput {
            e_tag: etag(tag),
            ..PutObjectOutput::default()
        })
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let me = self.caller(&req).await?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let o = on_root(&me, move |root| objects::open(root, &bucket, &key)).await?;
        let whole = 0..o.size;
        let range = match req.input.range {
            Some(r) => Some(r.check(o.size).map_err(|_| {
                s3_error!(
                    InvalidRange,
                    "the range is outside the object's {} bytes",
                    o.size
                )
            })?),
            None => None,
        };
        let part = range.clone().unwrap_or(whole);
        let d = describe(&req.input.key, o.meta.as_ref());
        let shown_range = range
            .as_ref()
            .map(|r| format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), o.size));
        let len = part.end - part.start;
        ok(described!(
            GetObjectOutput {
                body: Some(objects::stream(o.file, part)),
                content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
                content_range: shown_range,
            },
            o,
            d
        ))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let me = self.caller(&req).await?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let o = on_root(&me, move |root| objects::open(root, &bucket, &key)).await?;
        let d = describe(&req.input.key, o.meta.as_ref());
        ok(described!(
            HeadObjectOutput {
                content_length: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
            },
            o,
            d
        ))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let me = self.caller(&req).await?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let freed = on_root(&me, move |root| objects::delete(root, &bucket, &key)).await?;
        self.st.usage.moved(&me.name, 0, freed);
        ok(DeleteObjectOutput::default())
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let me = self.caller(&req).await?;
        let bucket = req.input.bucket.clone();
        let keys: Vec<String> = req
            .input
            .delete
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect();
        let quiet = req.input.delete.quiet.unwrap_or(false);
        let (deleted, errors, freed) = on_root(&me, move |root| {
            let (mut deleted, mut errors, mut freed) = (Vec::new(), Vec::new(), 0u64);
            for key in keys {
                match objects::delete(root, &bucket, &key) {
                    Ok(n) => {
                        freed += n;
                        if !quiet {
                            deleted.push(DeletedObject {
                                key: Some(key),
                                ..DeletedObject::default()
                            });
                        }
                    }
                    Err(e) => errors.push(Error {
                        code: Some(e.code().as_str().to_string()),
                        message: e.message().map(str::to_string),
                        key: Some(key),
                        ..Error::default()
                    }),
                }
            }
            Ok((deleted, errors, freed))
        })
        .await?;
        self.st.usage.moved(&me.name, 0, freed);
        ok(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..DeleteObjectsOutput::default()
        })
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let CopySource::Bucket {
            bucket: from_bucket,
            key: from_key,
            ..
        } = &i.copy_source
        else {
            return Err(s3_error!(NotImplemented, "copies from access points"));
        };
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let new = replace.then(|| given_of!(i));
        let (tag, modified) = objects::copy(
            &self.st,
            &me,
            (from_bucket, from_key),
            (&i.bucket, &i.key),
            new,
        )
        .await?;
        ok(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: etag(tag),
                last_modified: time(modified),
                ..CopyObjectResult::default()
            }),
            ..CopyObjectOutput::default()
        })
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let after = match (&i.continuation_token, &i.start_after) {
            (Some(t), _) => after_token(t)?,
            (None, Some(s)) => s.clone(),
            (None, None) => String::new(),
        };
        let q = Query {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after,
            max: max_keys(i.max_keys),
        };
        let (bucket, q2) = (i.bucket.clone(), q.clone());
        let page = on_root(&me, move |root| listing::list(root, &bucket, &q2)).await?;
        let url = wants_url(&i.encoding_type);
        let (contents, prefixes) = page_entries(&page, url);
        let enc = |s: Option<String>| s.map(|s| if url { url_encode(&s) } else { s });
        ok(ListObjectsV2Output {
            name: Some(i.bucket),
            key_count: Some((contents.len() + prefixes.len()) as i32),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            is_truncated: Some(page.truncated),
            next_continuation_token: page
                .last
                .as_deref()
                .filter(|_| page.truncated)
                .map(token_of),
            continuation_token: i.continuation_token,
            max_keys: Some(q.max as i32),
            prefix: enc(i.prefix),
            delimiter: enc(i.delimiter),
            start_after: enc(i.start_after),
            encoding_type: i.encoding_type,
            ..ListObjectsV2Output::default()
        })
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let q = Query {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            after: i.marker.clone().unwrap_or_default(),
            max: max_keys(i.max_keys),
        };
        let (bucket, q2) = (i.bucket.clone(), q.clone());
        let page = on_root(&me, move |root| listing::list(root, &bucket, &q2)).await?;
        let url = wants_url(&i.encoding_type);
        let (contents, prefixes) = page_entries(&page, url);
        let enc = |s: Option<String>| s.map(|s| if url { url_encode(&s) } else { s });
        ok(ListObjectsOutput {
            name: Some(i.bucket),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            is_truncated: Some(page.truncated),
            next_marker: enc(page.last.clone().filter(|_| page.truncated)),
            marker: enc(i.marker),
            max_keys: Some(q.max as i32),
            prefix: enc(i.prefix),
            delimiter: enc(i.delimiter),
            encoding_type: i.encoding_type,
            ..ListObjectsOutput::default()
        })
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let g = given_of!(i);
        let id = multipart::create(&me, &i.bucket, &i.key, g).await?;
        ok(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(id),
            ..CreateMultipartUploadOutput::default()
        })
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let w = Which {
            bucket: &i.bucket,
            key: &i.key,
            id: &i.upload_id,
        };
        let length = i.content_length.and_then(|n| u64::try_from(n).ok());
        let tag = multipart::upload_part(
            &self.uploads,
            &self.st,
            &me,
            w,
            i.part_number,
            i.body,
            length,
            i.content_md5,
        )
        .await?;
        ok(UploadPartOutput {
            e_tag: etag(tag),
            ..UploadPartOutput::default()
        })
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let parts = i
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number.unwrap_or(0),
                    p.e_tag.map(ETag::into_value).unwrap_or_default(),
                )
            })
            .collect();
        let w = Which {
            bucket: &i.bucket,
            key: &i.key,
            id: &i.upload_id,
        };
        let tag = multipart::complete(&self.uploads, &self.st, &me, w, parts).await?;
        ok(CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            bucket: Some(i.bucket),
            key: Some(i.key),
            e_tag: etag(tag),
            ..CompleteMultipartUploadOutput::default()
        })
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let w = Which {
            bucket: &i.bucket,
            key: &i.key,
            id: &i.upload_id,
        };
        multipart::abort(&self.uploads, &me, w).await?;
        ok(AbortMultipartUploadOutput::default())
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let w = Which {
            bucket: &i.bucket,
            key: &i.key,
            id: &i.upload_id,
        };
        let record = multipart::record(&me, w).await?;
        let marker = i
            .part_number_marker
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0);
        let max = max_keys(i.max_parts);
        let mut parts: Vec<Part> = record
            .parts
            .range(marker + 1..)
            .take(max + 1)
            .map(|(n, p)| Part {
                part_number: Some(*n as i32),
                size: Some(p.size as i64),
                e_tag: etag(p.md5.clone()),
                last_modified: time(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(p.modified),
                ),
                ..Part::default()
            })
            .collect();
        let truncated = parts.len() > max;
        parts.truncate(max);
        let next = parts.last().and_then(|p| p.part_number);
        ok(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            is_truncated: Some(truncated),
            next_part_number_marker: next.filter(|_| truncated),
            max_parts: Some(max as i32),
            parts: Some(parts),
            ..ListPartsOutput::default()
        })
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let me = self.caller(&req).await?;
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let uploads = multipart::in_progress(&me, &i.bucket)
            .await?
            .into_iter()
            .filter(|(_, r)| r.key.starts_with(&prefix))
            .take(listing::MAX_KEYS)
            .map(|(id, r)| MultipartUpload {
                key: Some(r.key),
                upload_id: Some(id),
                initiated: time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.created)),
                ..MultipartUpload::default()
            })
            .collect();
        ok(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            uploads: Some(uploads),
            is_truncated: Some(false),
            ..ListMultipartUploadsOutput::default()
        })
    }
}
