//! The customers API: registration, reading, changing, credit; who may do what.

use reqwest::Method;
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use testkit::Backend;

use testkit::assert_problem;

use crate::helpers::spawn_app;

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn anyone_registers_with_the_default_limit_and_the_password_never_leaves(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let body = json!({"email": " Ada@Example.com ", "name": "Ada Lovelace", "password": "correct horse battery"});
    let response = app
        .request(Method::POST, "/customers", None, Some(&body))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("correct horse"),
        "the password is never returned"
    );
    let customer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        location,
        format!("/customers/{}", customer["id"].as_str().unwrap())
    );
    assert_eq!(customer["email"], "ada@example.com");
    assert_eq!(customer["role"], "customer");
    assert_eq!(customer["status"], "ACTIVE");
    assert_eq!(
        customer["credit_limit"],
        json!({"amount_minor": 10000, "currency": "EUR"})
    );
    assert!(customer.get("password_hash").is_none());

    let again = app.request(Method::POST, "/customers", None, Some(&json!({"email": "ADA@example.com", "name": "Other", "password": "another password"}))).await;
    assert_problem(again, StatusCode::CONFLICT, "EMAIL_TAKEN").await;

    let token = app.token("ada@example.com", "correct horse battery").await;
    let me: Value = app
        .request(Method::GET, &location, Some(&token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], customer["id"]);
    let renamed = app
        .request(
            Method::PATCH,
            &location,
            Some(&token),
            Some(&json!({"name": "Ada King"})),
        )
        .await;
    assert_eq!(renamed.json::<Value>().await.unwrap()["name"], "Ada King");
    let credit: Value = app
        .request(
            Method::GET,
            &format!("{location}/credit"),
            Some(&token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        credit["available"],
        json!({"amount_minor": 10000, "currency": "EUR"})
    );
    assert_eq!(credit["reserved"]["amount_minor"], 0);

    // The stored hash is argon2id, never the password.
    let hash: String = {
        use sea_orm::{ConnectionTrait, Database, Statement};
        let db = Database::connect(&app.database.url).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT password_hash FROM customers WHERE email = 'ada@example.com'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "password_hash").unwrap()
    };
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn customers_act_only_on_themselves_and_admins_on_everyone(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (ada, ada_token) = app.customer_with_limit(5_000).await;
    let (bob, bob_token) = app.customer_with_limit(5_000).await;

    for path in [
        format!("/customers/{bob}"),
        format!("/customers/{bob}/credit"),
    ] {
        let response = app
            .request(Method::GET, &path, Some(&ada_token), None)
            .await;
        assert_problem(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
    let rename_other = app
        .request(
            Method::PATCH,
            &format!("/customers/{bob}"),
            Some(&ada_token),
            Some(&json!({"name": "Mallory"})),
        )
        .await;
    assert_problem(rename_other, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let raise_own_limit = app
        .request(
            Method::PATCH,
            &format!("/customers/{ada}"),
            Some(&ada_token),
            Some(&json!({"credit_limit": {"amount_minor": 999999, "currency": "EUR"}})),
        )
        .await;
    assert_problem(raise_own_limit, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let unsuspend_self = app
        .request(
            Method::PATCH,
            &format!("/customers/{ada}"),
            Some(&ada_token),
            Some(&json!({"status": "ACTIVE"})),
        )
        .await;
    assert_problem(unsuspend_self, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let list = app
        .request(Method::GET, "/customers", Some(&bob_token), None)
        .await;
    assert_problem(list, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let anonymous = app
        .request(Method::GET, &format!("/customers/{ada}"), None, None)
        .await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let self_limit = app
        .request(Method::POST, "/customers", None, Some(&json!({"email": "x@example.com", "name": "X", "password": "password!", "credit_limit": {"amount_minor": 1, "currency": "EUR"}})))
        .await;
    assert_problem(self_limit, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let suspended = app
        .request(
            Method::PATCH,
            &format!("/customers/{ada}"),
            Some(&app.admin_token),
            Some(&json!({"status": "SUSPENDED"})),
        )
        .await;
    assert_eq!(
        suspended.json::<Value>().await.unwrap()["status"],
        "SUSPENDED"
    );
    let raised = app
        .request(
            Method::PATCH,
            &format!("/customers/{bob}"),
            Some(&app.admin_token),
            Some(&json!({"credit_limit": {"amount_minor": 7000, "currency": "EUR"}})),
        )
        .await;
    assert_eq!(
        raised.json::<Value>().await.unwrap()["credit_limit"]["amount_minor"],
        7000
    );
    let wrong_currency = app
        .request(
            Method::PATCH,
            &format!("/customers/{bob}"),
            Some(&app.admin_token),
            Some(&json!({"credit_limit": {"amount_minor": 7000, "currency": "USD"}})),
        )
        .await;
    assert_problem(
        wrong_currency,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn admins_page_through_customers(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        app.customer_with_limit(100).await;
    }
    let mut ids = Vec::new();
    let mut path = "/customers?limit=2".to_owned();
    loop {
        let page: Value = app
            .request(Method::GET, &path, Some(&app.admin_token), None)
            .await
            .json()
            .await
            .unwrap();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/customers?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 4, "three customers and the admin");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn bad_input_gets_a_problem_and_creates_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            json!({"email": "not-an-email", "name": "X", "password": "password!"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
        ),
        (
            json!({"email": "a@example.com", "name": "  ", "password": "password!"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
        ),
        (
            json!({"email": "a@example.com", "name": "X", "password": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
        ),
        (
            json!({"email": "a@example.com", "name": "X"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            json!({"email": "a@example.com", "name": "X", "password": "password!", "role": "admin"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
    ];
    for (body, status, code) in cases {
        assert_problem(
            app.request(Method::POST, "/customers", None, Some(&body))
                .await,
            status,
            code,
        )
        .await;
    }
    let negative = app
        .request(Method::POST, "/customers", Some(&app.admin_token), Some(&json!({"email": "a@example.com", "name": "X", "password": "password!", "credit_limit": {"amount_minor": -1, "currency": "EUR"}})))
        .await;
    assert_problem(negative, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    let unknown = uuid::Uuid::now_v7();
    let missing = app
        .request(
            Method::GET,
            &format!("/customers/{unknown}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(missing, StatusCode::NOT_FOUND, "CUSTOMER_NOT_FOUND").await;
    let page: Value = app
        .request(Method::GET, "/customers", Some(&app.admin_token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "only the admin exists"
    );
}
