-- The sixsense-udf container as a Snowpark Container Services service. Its specification is
-- written inline (FROM SPECIFICATION $$...$$) rather than read from a stage, so one rendering
-- names the image, the secret and the endpoint consistently and there is no file to upload.
-- deploy/spcs/spec.yaml is the same specification as a file (tests/deploy keeps them in step).
-- Without state_url the image's own UDF_STATE_URL (SQLite under /var/lib/udf) applies, on a
-- block storage volume (state_volume_size) that outlives restarts, suspends and upgrades (ALTER
-- SERVICE), so a redeploy pays nothing for answers still fresh; DROP SERVICE deletes it.
-- https://docs.snowflake.com/en/developer-guide/snowpark-container-services/block-storage-volume
-- The container listens on 8080 and is ready when GET /readyz answers 200 (state backend
-- reachable, token configured).
-- https://docs.snowflake.com/en/sql-reference/sql/create-service
-- https://docs.snowflake.com/en/developer-guide/snowpark-container-services/specification-reference
--
-- The endpoint is not public: only service functions (and roles granted a service role) can
-- reach it, which is why the service functions carry no shared-secret header.
-- More than one instance needs a shared state backend: render refuses max_instances > 1
-- unless state_url is a redis:// URL (cache, jobs and the rate limiter must be shared).
-- The noqa comments: sqlfluff 4.5 has no grammar for CREATE/ALTER SERVICE, and its layout rule
-- (LT02) misreads the YAML of the specification as SQL indentation.
-- noqa: disable=LT02
{%- set specification %}
spec:
  containers:
    - name: udf
      image: "{{ image }}"
      env:
        SIXSENSE_BASE_URL: "https://{{ upstream_host }}"
        {%- if state_url %}
        UDF_STATE_URL: "{{ state_url }}"
        {%- endif %}
        {%- if rate_limit %}
        SIXSENSE_RATE_LIMIT: "{{ rate_limit }}"
        {%- endif %}
        {%- if default_country %}
        SIXSENSE_DEFAULT_COUNTRY: "{{ default_country }}"
        {%- endif %}
      secrets:
        - snowflakeSecret:
            objectName: "{{ database }}.{{ schema }}.{{ secret_name }}"
          secretKeyRef: secret_string
          envVarName: SIXSENSE_API_TOKEN
      readinessProbe:
        port: 8080
        path: /readyz
      {%- if not state_url.startswith("redis") %}
      volumeMounts:
        - name: state
          mountPath: /var/lib/udf
      {%- endif %}
  {%- if not state_url.startswith("redis") %}
  volumes:
    - name: state
      source: block
      size: {{ state_volume_size }}
  {%- endif %}
  endpoints:
    - name: {{ endpoint_name }}
      port: 8080
      protocol: HTTP
      public: false
  logExporters:
    eventTableConfig:
      logLevel: INFO
{% endset %}
-- noqa: enable=LT02
use role {{ owner_role }};

create service if not exists {{ database }}.{{ schema }}.{{ service_name }} -- noqa: PRS
in compute pool {{ compute_pool }}
from specification $${{ specification }}$$
external_access_integrations = ({{ eai_name }})
min_instances = {{ min_instances }}
max_instances = {{ max_instances }}
comment = 'sixsense-udf: 6sense enrichment for service functions';

-- On a re-run the service exists already: bring it to this specification (a rolling upgrade
-- when the image changed) and to these instance counts.
-- https://docs.snowflake.com/en/sql-reference/sql/alter-service
alter service {{ database }}.{{ schema }}.{{ service_name }} -- noqa: PRS
from specification $${{ specification }}$$;

alter service {{ database }}.{{ schema }}.{{ service_name }} set -- noqa: PRS
min_instances = {{ min_instances }}
max_instances = {{ max_instances }};
