select * from {{ ref('stg_erp__gl_entries') }}
-- {{ this.database }}.{{ this.schema }}.{{ this.identifier }}
