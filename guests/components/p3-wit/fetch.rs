// `fetch`, a GET through `wasi:http/client@0.3.0`, for the test guests
// whose world imports it (`include!`d: each has its own `bindings`).

/// A GET of `url` (`http://HOST[:PORT]/PATH`): its status and body.
async fn fetch(url: &str) -> Result<(u16, Vec<u8>), bindings::wasi::http::types::ErrorCode> {
    use bindings::wasi::http::client;
    use bindings::wasi::http::types::{ErrorCode, Fields, Request, Response, Scheme};
    use bindings::wit_future;
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((_, rest)) => (Scheme::Http, rest),
        None => (Scheme::Http, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (request, _sent) = Request::new(Fields::new(), None, trailers_rx, None);
    let invalid = |()| ErrorCode::HttpRequestUriInvalid;
    request.set_scheme(Some(&scheme)).map_err(invalid)?;
    request.set_authority(Some(authority)).map_err(invalid)?;
    request.set_path_with_query(Some(path)).map_err(invalid)?;
    let response = client::send(request).await?;
    let status = response.get_status_code();
    let (_, result_rx) = wit_future::new(|| Ok(()));
    let (body, trailers) = Response::consume_body(response, result_rx);
    let body = body.collect().await;
    trailers.await?;
    Ok((status, body))
}
