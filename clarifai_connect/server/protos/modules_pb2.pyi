from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from clarifai_grpc.grpc.api import resources_pb2 as _resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Module(_message.Message):
    __slots__ = ("id", "description", "created_at", "modified_at", "visibility", "metadata", "user_id", "app_id", "module_version", "is_starred", "star_count", "bookmark_origin", "image")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    IS_STARRED_FIELD_NUMBER: _ClassVar[int]
    STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    BOOKMARK_ORIGIN_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    created_at: _timestamp_pb2.Timestamp
    modified_at: _timestamp_pb2.Timestamp
    visibility: _resources_pb2.Visibility
    metadata: _struct_pb2.Struct
    user_id: str
    app_id: str
    module_version: ModuleVersion
    is_starred: bool
    star_count: int
    bookmark_origin: _resources_pb2.BookmarkOrigin
    image: _resources_pb2.Image
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., modified_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., visibility: _Optional[_Union[_resources_pb2.Visibility, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., user_id: _Optional[str] = ..., app_id: _Optional[str] = ..., module_version: _Optional[_Union[ModuleVersion, _Mapping]] = ..., is_starred: bool = ..., star_count: _Optional[int] = ..., bookmark_origin: _Optional[_Union[_resources_pb2.BookmarkOrigin, _Mapping]] = ..., image: _Optional[_Union[_resources_pb2.Image, _Mapping]] = ...) -> None: ...

class ModuleVersion(_message.Message):
    __slots__ = ("id", "module_id", "app_id", "user_id", "description", "notes", "created_at", "modified_at", "git_commit_url", "module_nav", "approved", "visibility", "metadata")
    class ModuleSubNav(_message.Message):
        __slots__ = ("title", "query_key", "query_value")
        TITLE_FIELD_NUMBER: _ClassVar[int]
        QUERY_KEY_FIELD_NUMBER: _ClassVar[int]
        QUERY_VALUE_FIELD_NUMBER: _ClassVar[int]
        title: str
        query_key: str
        query_value: str
        def __init__(self, title: _Optional[str] = ..., query_key: _Optional[str] = ..., query_value: _Optional[str] = ...) -> None: ...
    class ModuleNav(_message.Message):
        __slots__ = ("title", "module_sub_navs")
        TITLE_FIELD_NUMBER: _ClassVar[int]
        MODULE_SUB_NAVS_FIELD_NUMBER: _ClassVar[int]
        title: str
        module_sub_navs: _containers.RepeatedCompositeFieldContainer[ModuleVersion.ModuleSubNav]
        def __init__(self, title: _Optional[str] = ..., module_sub_navs: _Optional[_Iterable[_Union[ModuleVersion.ModuleSubNav, _Mapping]]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_URL_FIELD_NUMBER: _ClassVar[int]
    MODULE_NAV_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    module_id: str
    app_id: str
    user_id: str
    description: str
    notes: str
    created_at: _timestamp_pb2.Timestamp
    modified_at: _timestamp_pb2.Timestamp
    git_commit_url: str
    module_nav: ModuleVersion.ModuleNav
    approved: bool
    visibility: _resources_pb2.Visibility
    metadata: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., module_id: _Optional[str] = ..., app_id: _Optional[str] = ..., user_id: _Optional[str] = ..., description: _Optional[str] = ..., notes: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., modified_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., git_commit_url: _Optional[str] = ..., module_nav: _Optional[_Union[ModuleVersion.ModuleNav, _Mapping]] = ..., approved: bool = ..., visibility: _Optional[_Union[_resources_pb2.Visibility, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class InstalledModuleVersion(_message.Message):
    __slots__ = ("id", "module_version", "app_id", "user_id", "created_at", "modified_at", "deploy_url", "visibility", "key_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_URL_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    module_version: ModuleVersion
    app_id: str
    user_id: str
    created_at: _timestamp_pb2.Timestamp
    modified_at: _timestamp_pb2.Timestamp
    deploy_url: str
    visibility: _resources_pb2.Visibility
    key_id: str
    def __init__(self, id: _Optional[str] = ..., module_version: _Optional[_Union[ModuleVersion, _Mapping]] = ..., app_id: _Optional[str] = ..., user_id: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., modified_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., deploy_url: _Optional[str] = ..., visibility: _Optional[_Union[_resources_pb2.Visibility, _Mapping]] = ..., key_id: _Optional[str] = ...) -> None: ...

class GetModuleRequest(_message.Message):
    __slots__ = ("user_app_id", "module_id", "additional_fields")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    module_id: str
    additional_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., module_id: _Optional[str] = ..., additional_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModulesRequest(_message.Message):
    __slots__ = ("user_app_id", "page", "per_page", "additional_fields", "sort_ascending", "sort_by_created_at", "sort_by_star_count", "sort_by_modified_at", "sort_by_id", "sort_by_relevance", "starred_only", "bookmark", "search", "name", "filter_by_user_id", "visibility")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    SORT_ASCENDING_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_ID_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_RELEVANCE_FIELD_NUMBER: _ClassVar[int]
    STARRED_ONLY_FIELD_NUMBER: _ClassVar[int]
    BOOKMARK_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_BY_USER_ID_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    page: int
    per_page: int
    additional_fields: _containers.RepeatedScalarFieldContainer[str]
    sort_ascending: bool
    sort_by_created_at: bool
    sort_by_star_count: bool
    sort_by_modified_at: bool
    sort_by_id: bool
    sort_by_relevance: bool
    starred_only: bool
    bookmark: bool
    search: str
    name: str
    filter_by_user_id: bool
    visibility: _resources_pb2.Visibility
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ..., additional_fields: _Optional[_Iterable[str]] = ..., sort_ascending: bool = ..., sort_by_created_at: bool = ..., sort_by_star_count: bool = ..., sort_by_modified_at: bool = ..., sort_by_id: bool = ..., sort_by_relevance: bool = ..., starred_only: bool = ..., bookmark: bool = ..., search: _Optional[str] = ..., name: _Optional[str] = ..., filter_by_user_id: bool = ..., visibility: _Optional[_Union[_resources_pb2.Visibility, _Mapping]] = ...) -> None: ...

class PostModulesRequest(_message.Message):
    __slots__ = ("user_app_id", "modules")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    modules: _containers.RepeatedCompositeFieldContainer[Module]
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., modules: _Optional[_Iterable[_Union[Module, _Mapping]]] = ...) -> None: ...

class PatchModulesRequest(_message.Message):
    __slots__ = ("user_app_id", "modules", "action")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    modules: _containers.RepeatedCompositeFieldContainer[Module]
    action: str
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., modules: _Optional[_Iterable[_Union[Module, _Mapping]]] = ..., action: _Optional[str] = ...) -> None: ...

class DeleteModulesRequest(_message.Message):
    __slots__ = ("user_app_id", "ids")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SingleModuleResponse(_message.Message):
    __slots__ = ("status", "module")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    module: Module
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., module: _Optional[_Union[Module, _Mapping]] = ...) -> None: ...

class MultiModuleResponse(_message.Message):
    __slots__ = ("status", "modules")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    modules: _containers.RepeatedCompositeFieldContainer[Module]
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., modules: _Optional[_Iterable[_Union[Module, _Mapping]]] = ...) -> None: ...

class GetModuleVersionRequest(_message.Message):
    __slots__ = ("user_app_id", "module_id", "module_version_id")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    module_id: str
    module_version_id: str
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., module_id: _Optional[str] = ..., module_version_id: _Optional[str] = ...) -> None: ...

class ListModuleVersionsRequest(_message.Message):
    __slots__ = ("user_app_id", "module_id", "page", "per_page")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    module_id: str
    page: int
    per_page: int
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., module_id: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ...) -> None: ...

class PostModuleVersionsRequest(_message.Message):
    __slots__ = ("user_app_id", "module_id", "module_versions")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    module_id: str
    module_versions: _containers.RepeatedCompositeFieldContainer[ModuleVersion]
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., module_id: _Optional[str] = ..., module_versions: _Optional[_Iterable[_Union[ModuleVersion, _Mapping]]] = ...) -> None: ...

class DeleteModuleVersionsRequest(_message.Message):
    __slots__ = ("user_app_id", "module_id", "ids")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    module_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., module_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SingleModuleVersionResponse(_message.Message):
    __slots__ = ("status", "module_version")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    module_version: ModuleVersion
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., module_version: _Optional[_Union[ModuleVersion, _Mapping]] = ...) -> None: ...

class MultiModuleVersionResponse(_message.Message):
    __slots__ = ("status", "module_versions")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODULE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    module_versions: _containers.RepeatedCompositeFieldContainer[ModuleVersion]
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., module_versions: _Optional[_Iterable[_Union[ModuleVersion, _Mapping]]] = ...) -> None: ...

class ListInstalledModuleVersionsRequest(_message.Message):
    __slots__ = ("user_app_id", "page", "per_page")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    page: int
    per_page: int
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ...) -> None: ...

class PostInstalledModuleVersionsRequest(_message.Message):
    __slots__ = ("user_app_id", "installed_module_versions")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_MODULE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    installed_module_versions: _containers.RepeatedCompositeFieldContainer[InstalledModuleVersion]
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., installed_module_versions: _Optional[_Iterable[_Union[InstalledModuleVersion, _Mapping]]] = ...) -> None: ...

class DeleteInstalledModuleVersionsRequest(_message.Message):
    __slots__ = ("user_app_id", "ids")
    USER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    user_app_id: _resources_pb2.UserAppIDSet
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_app_id: _Optional[_Union[_resources_pb2.UserAppIDSet, _Mapping]] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MultiInstalledModuleVersionResponse(_message.Message):
    __slots__ = ("status", "installed_module_versions")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_MODULE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    installed_module_versions: _containers.RepeatedCompositeFieldContainer[InstalledModuleVersion]
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., installed_module_versions: _Optional[_Iterable[_Union[InstalledModuleVersion, _Mapping]]] = ...) -> None: ...
