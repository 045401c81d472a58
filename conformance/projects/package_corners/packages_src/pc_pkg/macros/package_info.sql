{# elementary-style: read the package's own version from the runtime config #}
{% macro get_runtime_config() %}
  {{ return(builtins.ref.config) }}
{% endmacro %}

{% macro package_version(name) %}
  {% set conf = pc_pkg.get_runtime_config() %}
  {% if conf.dependencies and name in conf.dependencies %}
    {% do return(conf.dependencies[name].version) %}
  {% endif %}
  {% do return('unknown') %}
{% endmacro %}
